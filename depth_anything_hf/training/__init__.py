"""What the training scripts share: arguments, Accelerate set-up, optimiser groups, checkpointing, DINOv2
encoder initialisation, resumable data streams, batches, the student's objectives, logging and export.

Import the submodules directly (`from depth_anything_hf.training.encoder_init import ...`): this file imports
nothing, so that one piece can be used without loading the rest.
"""
