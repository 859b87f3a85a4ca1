"""Caption stage of the builder: expert-guided caption writing with dual-model validation."""
