"""Fine-tune a BERT classifier and measure its energy and CO2: ``python train.py [overrides]``.

Examples::

    python train.py                                  # synthetic demo data, tiny BERT, offline
    python train.py precision=16 strategy=ddp
    python train.py -m precision=32,bf16,16 pruning=none,heads

Configs: conf/train.yaml and its groups; the code: lightning_green/train.py.
"""

from lightning_green.recipe.train import main

if __name__ == "__main__":
    main()
