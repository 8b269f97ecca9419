"""Training of DSen2-CR, one duty per module.

- ``config``: validated ``model:`` / ``training:`` parameters (ModelConfig, TrainingConfig)
- ``trainer``: CloudRemovalTrainer, the Keras wrapper that feeds CARL the cloudy input and mask
- ``strategy``: tf.distribute strategy, chief, mixed precision (TensorFlow backend)
- ``backend``: what differs on TensorFlow, JAX, PyTorch (strategy stand-in, jit, input path)
- ``run_folder``: the run folder (checkpoints, log, final model) and the resume state
- ``summary``: the JSON summary of a run
- ``loop``: ``train``, the steps of one run in order
"""
