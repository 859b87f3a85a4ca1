"""verl launch recipes for MedGRPO: Hydra configs (config/), launchers (*.sh) and the dry run."""
