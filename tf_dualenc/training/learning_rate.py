"""The learning-rate schedule every trainer here uses: linear warm-up, then linear decay to 0."""


def warmup_linear_decay(learning_rate, steps, warmup_steps=0):
    """Learning-rate schedule: linear warm-up to `learning_rate` over `warmup_steps` ((step + 1) / warmup_steps × peak),
    then linear decay to 0 at `steps`. A freshly initialised scoring head on a pretrained tower gives large early
    gradients; starting cold at the peak rate lets them wreck the tower's weights. With `warmup_steps=0` this is
    the paper's plain linear decay, lr × (1 − step / steps)."""
    import keras

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer.")
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < steps:
        raise ValueError(f"warmup_steps={warmup_steps!r} must be an integer in [0, steps={steps}).")

    class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            warm = learning_rate * (step + 1.0) / max(warmup_steps, 1)
            decay = learning_rate * keras.ops.maximum(0.0, (steps - step) / (steps - warmup_steps))
            return keras.ops.where(step < warmup_steps, warm, decay)

        def get_config(self):
            return {"learning_rate": learning_rate, "steps": steps, "warmup_steps": warmup_steps}

    return WarmupLinearDecay()
