"""Run by test_distributed.py in a subprocess: one training process (single device, 2 mirrored CPU replicas, or
one worker of a MultiWorkerMirroredStrategy cluster given by TF_CONFIG)."""

import json
import sys

import tf_dualenc  # noqa: F401


def main(mode, config_json):
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tf_dualenc.training import TrainConfig, train

    config = TrainConfig(**json.loads(config_json))
    summary, _ = train(config, progress=False, print_fn=lambda *_: None)
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
