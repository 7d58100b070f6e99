"""A :class:`~prunex.train.StructureSchedule` inside other people's training loops: PyTorch Lightning
(:mod:`prunex.integrations.lightning`, ``pip install -e ".[lightning]"``) and Hugging Face Accelerate
(:mod:`prunex.integrations.accelerate`, ``pip install -e ".[accelerate]"``). Importing this package imports neither."""
