"""The public measuring API: :class:`~lightning_green.meter.energy_meter.EnergyMeter` (engine,
carbon and outputs together), its options, state across resumes, budgets and projections."""
