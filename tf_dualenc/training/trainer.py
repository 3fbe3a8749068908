"""`tf-dualenc train`: a custom training loop with checkpoints that resume exactly.

A checkpoint holds the model, the optimizer state and the global step; the data position follows from
the step because the batch order is a pure function of the seed (see `input_pipeline`). So a run killed
after its checkpoint at step k and restarted continues exactly as an uninterrupted run would.
"""

import dataclasses
import json
import os
import resource
import time

from tf_dualenc.atomic_write import write_json_atomic
from tf_dualenc.training.checkpoints import restore_latest_checkpoint
from tf_dualenc.training.train_config import TrainConfig

CONFIG_FILE = "train_config.json"
# Keys that may differ between a run and its resumption (they do not change the training trajectory).
# mini_batch_size only bounds memory (the cached step's gradient is the plain one), so a run that ran out of memory
# can resume with a smaller one.
_RESUMABLE_DIFFERENCES = {"output_dir", "checkpoint_every", "keep_checkpoints", "log_every", "lenient", "mini_batch_size"}


def make_strategy(name):
    """The tf.distribute strategy for `TrainConfig.strategy`.

    "mirrored" uses every GPU, or every logical CPU device when there is no GPU (tests split the CPU in two);
    "multi_worker" reads the cluster from TF_CONFIG; "tpu" connects to the TPU named by TPU_NAME (or the local one).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multi_worker' needs the TF_CONFIG environment variable (cluster and task).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def build_model(config):
    model = _build_model(config)
    # XLA and TPUs want static shapes: keep the preprocessors' fixed padding there.
    model.trim_padding = config.trim_padding and not config.jit_compile and config.strategy != "tpu"
    return model


def _build_model(config):
    from tf_dualenc.models import build_bert_dual_encoder, build_t5_dual_encoder

    if config.model == "bert":
        return build_bert_dual_encoder(
            config.preset,
            architecture=config.architecture,
            embedding_dim=config.embedding_dim,
            query_sequence_length=config.query_length,
            document_sequence_length=config.document_length,
        )
    return build_t5_dual_encoder(
        config.size,
        vocabulary=config.vocabulary,
        architecture=config.architecture,
        embedding_dim=config.embedding_dim,
        query_sequence_length=config.query_length,
        document_sequence_length=config.document_length,
        preset=config.preset,
        **({} if config.preset else {"dropout": config.dropout}),
    )


def make_loss(config):
    """The Keras loss object `config.loss` names (`tf_dualenc.losses.get`), with the settings that loss takes
    (`losses.settings`) read from `config`: temperature, bidirectional, same_tower, mask_duplicates, alpha as it applies.
    """
    from tf_dualenc import losses

    return losses.get(config.loss, **{key: getattr(config, key) for key in losses.settings(config.loss)})


def make_optimizer(config):
    import keras

    from tf_dualenc.training.learning_rate import warmup_linear_decay

    schedule = warmup_linear_decay(config.learning_rate, config.steps, config.warmup_steps)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=schedule)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule)
    return keras.optimizers.Adafactor(learning_rate=schedule)


def make_distillation(config):
    """The distillation term the step adds to the loss, `(q, d, h, teacher_scores) → scalar`, or None when
    `config.distillation` is not set (`tf_dualenc.losses.listwise_distillation_loss`, weighted)."""
    if not config.distillation:
        return None
    from tf_dualenc.losses import listwise_distillation_loss

    def distillation(q, d, h, teacher_scores):
        return config.distillation_weight * listwise_distillation_loss(
            q, d, h, teacher_scores, temperature=config.temperature, teacher_temperature=config.distillation_temperature)

    return distillation


def batch_loss(loss, distillation, q, d, h, query_ids, document_ids, teacher_scores):
    """The step's loss of the global batch: the contrastive loss, plus the distillation term when there is one."""
    value = loss.embedding_loss(q, d, h, query_ids, document_ids)
    if distillation is not None:
        value += distillation(q, d, h, gather_rows(teacher_scores))
    return value


def gather_rows(x):
    """Every replica's rows of `x`, in replica order (`x` itself under one replica)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_gather(x, axis=0)


def gather_global_batch(q, d, h, query_ids, document_ids):
    """Every replica's embeddings and ids, concatenated in replica order (as they are under one replica).

    Negatives come from the GLOBAL batch: each replica gathers all embeddings (gradients flow back through
    all_gather) and computes the same global loss.
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return q, d, h, query_ids, document_ids
    q, d = gather_rows(q), gather_rows(d)
    h = None if h is None else gather_rows(h)
    # Collective all_gather rejects int64 under MultiWorkerMirroredStrategy ("destinations can
    # not be empty"); the id hashes are < 2**52, so float64 carries them exactly.
    query_ids, document_ids = (
        tf.cast(context.all_gather(tf.cast(ids, tf.float64), axis=0), tf.int64) for ids in (query_ids, document_ids)
    )
    return q, d, h, query_ids, document_ids


def in_batch_accuracy(q, d):
    """Share of queries whose own document scores highest among the batch's documents."""
    import tensorflow as tf

    hits = tf.equal(tf.argmax(tf.matmul(q, d, transpose_b=True), axis=1), tf.range(tf.shape(q)[0], dtype=tf.int64))
    return tf.reduce_mean(tf.cast(hits, tf.float32))


def make_train_step(strategy, model, optimizer, loss, batch_size, jit_compile=False, mini_batch_size=0, distillation=None):
    """The compiled training step: global batch in, (loss, in-batch accuracy) out, one optimizer update.

    `loss` is a `tf_dualenc.losses.DualEncoderLoss` (`make_loss`); the step takes its `embedding_loss` of the
    global batch's embeddings and ids, plus `distillation` (`make_distillation`) of the embeddings and the batch's
    `features["teacher_scores"]` when given.

    Under several replicas each replica embeds its slice of the global batch, then all-gathers every replica's
    embeddings so in-batch and same-tower negatives come from the GLOBAL batch. A `mini_batch_size` smaller than
    a replica's slice takes the same gradient by gradient caching (`tf_dualenc.training.cached_step`).
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    variables = model.trainable_variables

    def replica_step(features, query_ids, document_ids):
        with tf.GradientTape() as tape:
            q = model.embed_queries(features["query"], training=True)
            d = model.embed_documents(features["document"], training=True)
            h = model.embed_negatives(features["negatives"], training=True) if "negatives" in features else None
            q, d, h, query_ids, document_ids = gather_global_batch(q, d, h, query_ids, document_ids)
            loss_value = batch_loss(loss, distillation, q, d, h, query_ids, document_ids, features.get("teacher_scores"))
            # all_gather's gradient sums over replicas and Keras sums the replicas' gradients again, so each
            # replica contributes loss / R: the applied update is exactly ∇loss of the global batch.
            scaled = loss_value / replicas
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss_value, in_batch_accuracy(q, d)

    if mini_batch_size and mini_batch_size < batch_size // replicas:
        from tf_dualenc.training.cached_step import make_cached_replica_step

        replica_step = make_cached_replica_step(model, optimizer, loss, mini_batch_size, replicas, distillation)

    @tf.function(jit_compile=jit_compile and replicas == 1)
    def train_step(features, query_ids, document_ids):
        per_replica = batch_size // replicas

        def local_slice(context):
            start = context.replica_id_in_sync_group * per_replica
            return tf.nest.map_structure(lambda t: t[start : start + per_replica], (features, query_ids, document_ids))

        distributed = strategy.experimental_distribute_values_from_function(local_slice)
        loss_value, accuracy = strategy.run(replica_step, args=distributed)
        # Every replica computed the same global values; take one.
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, loss_value, axis=None), strategy.reduce(
            tf.distribute.ReduceOp.MEAN, accuracy, axis=None
        )

    return train_step


def _check_resume_config(output_dir, config):
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)
    current = config.to_dict()
    # A key the earlier run's file lacks was added later; that run had its default.
    defaults = TrainConfig().to_dict()
    previous = {k: previous.get(k, defaults.get(k)) for k in set(previous) | set(current)}
    differing = sorted(k for k in previous if k not in _RESUMABLE_DIFFERENCES and previous.get(k) != current.get(k))
    if differing:
        details = ", ".join(f"{k}: {previous.get(k)!r} → {current.get(k)!r}" for k in differing)
        raise ValueError(
            f"{output_dir} holds a run with a different config ({details}). Resume with the same config, or use a new output_dir."
        )


def train(config, *, stop_after_steps=None, print_fn=print, progress=True, on_mined_documents=None):
    """Trains (or resumes) a dual encoder as `config` says; returns the summary dict.

    Args:
        config: a `TrainConfig` (validated here before anything is built).
        stop_after_steps: stop this process after that many steps, as a killed run would (tests and
            time-boxed sessions); rerunning the same config resumes.
        on_mined_documents: called with ([(id, text)], [N, D] embeddings) when dense hard-negative mining encodes the
            corpus with the starting model (the pipeline keeps them to score the starting model without encoding
            the corpus again).
    """
    created = not os.path.exists(config.output_dir)
    steps_run = []
    try:
        return _train(config, stop_after_steps=stop_after_steps, print_fn=print_fn, progress=progress, steps_run=steps_run,
                      on_mined_documents=on_mined_documents)
    except BaseException:
        # A run that failed before its first training step (and before mining negatives worth keeping) leaves nothing
        # to resume or debug: remove the folder it created. Once a step ran, its logs and models stay.
        if created and not steps_run and os.path.isdir(config.output_dir) and not any(
                name.startswith(("hard_negatives-", "teacher_scores-")) for name in os.listdir(config.output_dir)):
            import shutil

            shutil.rmtree(config.output_dir, ignore_errors=True)
        raise


def with_data_rules(config):
    """`config` under its data's evaluation rules: a BEIR folder's `beir.json` can turn `ignore_identical_ids` and
    `lenient` on and set the title separator (`tf_dualenc.data.evaluation_rules`); a rule the config turns on, and a
    separator other than the default, stay."""
    if not os.path.isdir(config.data or ""):
        return config
    from tf_dualenc.data.evaluation_rules import resolve_rules

    default_separator = TrainConfig().title_separator
    rules = resolve_rules(config.data, ignore_identical_ids=config.ignore_identical_ids or None, lenient=config.lenient or None,
                          title_separator=None if config.title_separator == default_separator else config.title_separator)
    return dataclasses.replace(config, ignore_identical_ids=rules.ignore_identical_ids, lenient=rules.lenient,
                               title_separator=rules.title_separator)


def _train(config, *, stop_after_steps, print_fn, progress, steps_run, on_mined_documents=None):
    config = with_data_rules(config.validate())
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_dualenc.training.input_pipeline import make_dataset

    os.makedirs(config.output_dir, exist_ok=True)
    _check_resume_config(config.output_dir, config)
    previous_summary = _read_summary(config.output_dir)
    if previous_summary and previous_summary.get("finished"):
        # A finished run: report it again rather than overwrite its figures with an empty resumption.
        print_fn(f"{config.output_dir} holds a finished run ({previous_summary['steps_done']} steps); nothing to do. "
                 f"model: {previous_summary.get('model')}")
        from tf_dualenc.loading import load_model

        return previous_summary, load_model(previous_summary["model"])
    # Pairs without mining or teacher scores are read (and checked) before any model is built; mining needs the model.
    pairs = None if config.hard_negatives or config.distillation else _load_pairs(config, print_fn)
    validation = _validation_tracker(config, previous_summary)

    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    _check_replicas(config, replicas)
    chief = _is_chief(strategy)
    if chief:
        write_json_atomic(os.path.join(config.output_dir, CONFIG_FILE), config.to_dict())
    keras.utils.set_random_seed(config.seed)
    from tf_dualenc.precision import resolve_precision
    from tf_dualenc.training.precision import float32_compute, set_compute_policy, training_precision

    precision, precision_why = resolve_precision(config.mixed_precision)
    # Layers take the global policy when they are built; restored at once so nothing else inherits it.
    with strategy.scope(), training_precision(precision):
        model = build_model(config)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    if pairs is None:
        pairs = _prepared_pairs(config, model, print_fn, progress=progress and chief, on_documents=on_mined_documents)
    # Steps and warm-up follow from the pairs actually trained on (after the validation split and mining): the
    # optimizer's schedule needs them, so it is built only now.
    schedule = config.schedule(_count_pairs(pairs) if config.epochs is not None else None)
    schedule.update(mixed_precision=precision, mixed_precision_reason=precision_why)
    if schedule["note"]:
        print_fn(schedule["note"])
    config = dataclasses.replace(config, steps=schedule["steps"], warmup_steps=schedule["warmup_steps"], epochs=None,
                                 warmup_fraction=None, mixed_precision=precision)
    with strategy.scope(), training_precision(precision):
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
    checkpoint_dir, manager = _restore_checkpoint(config, strategy, chief, tf.train.Checkpoint(model=model, optimizer=optimizer, step=step),
                                                  print_fn)
    start_step = int(step.numpy())
    train_step = make_train_step(strategy, model, optimizer, make_loss(config), config.batch_size, config.jit_compile,
                                 config.mini_batch_size, make_distillation(config))

    writer = tf.summary.create_file_writer(os.path.join(config.output_dir, "logs") if chief else os.path.join(checkpoint_dir, "logs"))
    failures = []
    dataset = make_dataset(pairs, model, config.batch_size, config.seed, start_step, config.no_duplicates, failures)
    last_step = config.steps if stop_after_steps is None else min(config.steps, start_step + stop_after_steps)
    bar = keras.utils.Progbar(config.steps, stateful_metrics=["loss", "in_batch_accuracy", "lr"]) if progress and chief else None
    losses, accuracies = [], []
    begin = time.perf_counter()
    first_step_seconds = None
    try:
        for features, query_ids, document_ids in dataset if start_step < last_step else ():
            t0 = time.perf_counter()
            loss, accuracy = train_step(features, query_ids, document_ids)
            loss, accuracy = float(loss), float(accuracy)
            if not steps_run:
                steps_run.append(True)
            if first_step_seconds is None:
                first_step_seconds = time.perf_counter() - t0
            if not np.isfinite(loss):
                raise FloatingPointError(f"Loss became {loss} at step {int(step.numpy()) + 1}; last checkpoint: {manager.latest_checkpoint}.")
            step.assign_add(1)
            current = int(step.numpy())
            losses.append(loss)
            accuracies.append(accuracy)
            lr = float(optimizer.learning_rate) if not callable(optimizer.learning_rate) else float(optimizer.learning_rate(optimizer.iterations))
            if current % config.log_every == 0 or current == last_step:
                with writer.as_default(step=current):
                    tf.summary.scalar("loss", loss)
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("in_batch_accuracy", accuracy)
            if bar is not None:
                bar.update(current, values=[("loss", loss), ("in_batch_accuracy", accuracy), ("lr", lr)])
            if current % config.checkpoint_every == 0 or current == last_step:
                manager.save(checkpoint_number=current)
            if validation is not None and chief and (
                (config.validation_every and current % config.validation_every == 0) or current == config.steps
            ):
                with float32_compute(model):
                    metrics = validation.evaluate(model, current)
                with writer.as_default(step=current):
                    for name, value in metrics.items():
                        tf.summary.scalar(f"validation/{name}", value)
                print_fn(f"\nvalidation at step {current}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if current >= last_step:
                break
    except tf.errors.OpError:
        # tf.data wraps a failing source in an opaque op error; the original names the file and line.
        if failures:
            raise failures[0] from None
        raise
    writer.flush()
    # Training precision is not the model's: the returned and saved model computes in float32.
    set_compute_policy(model, "float32")
    if not chief:
        import shutil

        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    summary = _summary(config, pairs, int(step.numpy()), start_step, losses, accuracies, time.perf_counter() - begin,
                       first_step_seconds, manager.latest_checkpoint, replicas, validation)
    summary["schedule"] = schedule
    if chief:
        _save_run(config, summary, model, print_fn)
    return summary, model


def _check_replicas(config, replicas):
    if config.batch_size % replicas:
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of the {replicas} replicas of strategy={config.strategy!r}.")
    if 0 < config.mini_batch_size < config.batch_size // replicas and (config.batch_size // replicas) % config.mini_batch_size:
        raise ValueError(f"mini_batch_size={config.mini_batch_size} must divide each of the {replicas} replicas' "
                         f"{config.batch_size // replicas} pairs (batch_size={config.batch_size}).")


def _count_pairs(pairs):
    """How many training pairs one epoch holds: in memory, its length; streamed pair files are read through once."""
    if hasattr(pairs, "__len__"):
        return len(pairs)
    from tf_dualenc.data.pair_records import iter_pair_records

    return sum(1 for _ in iter_pair_records(pairs.files, pairs.data_format, lenient=pairs.lenient,
                                            num_negatives=pairs.num_negatives, teacher_scores=pairs.teacher_scores))


def _prepared_pairs(config, model, print_fn, progress=False, on_documents=None):
    """The pair stream with `config.num_negatives` hard negatives per pair, mined first when `hard_negatives` says
    so, and with the cross-encoder's scores of each list when distilling (both cached across runs)."""
    from tf_dualenc.data.pairs import open_pair_stream
    from tf_dualenc.training.hard_negative_pairs import prepare_hard_negative_pairs

    data, data_format = config.data, config.data_format
    if config.hard_negatives:
        # Mined in the training precision (bfloat16 encodes the corpus ~1.5x faster where it is native); the cache
        # key holds the precision.
        data, data_format = prepare_hard_negative_pairs(config, model, print_fn, progress=progress,
                                                        on_documents=on_documents), "jsonl"
    if config.distillation:
        from tf_dualenc.training.teacher_scores import prepare_teacher_scores

        data, data_format = prepare_teacher_scores(config, data, data_format, print_fn, progress=progress), "jsonl"
    return open_pair_stream(data, data_format=data_format, shuffle_buffer=config.shuffle_buffer,
                            num_negatives=config.num_negatives, lenient=config.lenient, teacher_scores=bool(config.distillation))


def _restore_checkpoint(config, strategy, chief, checkpoint, print_fn):
    """(this worker's checkpoint folder, its CheckpointManager), after restoring the latest checkpoint if any."""
    import tensorflow as tf

    # Every worker must take part in a save; only the chief's copy is kept.
    checkpoint_dir = os.path.join(config.output_dir, "checkpoints")
    if not chief:
        checkpoint_dir = os.path.join(config.output_dir, f".worker_{strategy.cluster_resolver.task_id}_checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=config.keep_checkpoints)
    latest = restore_latest_checkpoint(checkpoint, os.path.join(config.output_dir, "checkpoints"), print_fn)
    if latest:
        print_fn(f"resumed from {latest} at step {int(checkpoint.step.numpy())}")
    return checkpoint_dir, manager


def _summary(config, pairs, done, start_step, losses, accuracies, seconds, first_step_seconds, checkpoint, replicas, validation):
    import numpy as np

    summary = {
        "steps_done": done,
        "steps_total": config.steps,
        "finished": done >= config.steps,
        "resumed_from_step": start_step,
        "train_pairs": len(pairs) if hasattr(pairs, "__len__") else None,
        "skipped_records": dict(pairs.skipped),
        "data": pairs.source,
        "last_loss": losses[-1] if losses else None,
        "mean_loss_last_10": float(np.mean(losses[-10:])) if losses else None,
        "in_batch_accuracy_last_10": float(np.mean(accuracies[-10:])) if accuracies else None,
        "seconds_this_run": round(seconds, 2),
        "first_step_seconds": round(first_step_seconds, 2) if first_step_seconds else None,
        "pairs_per_second": round(len(losses) * config.batch_size / seconds, 3) if losses and seconds > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "checkpoint": checkpoint,
        "strategy": config.strategy,
        "replicas": replicas,
        "rules": {"ignore_identical_ids": config.ignore_identical_ids, "lenient": config.lenient,
                  "title_separator": config.title_separator},
    }
    if validation is not None:
        summary["validation"] = validation.summary()
        summary["best_model"] = summary["validation"]["best_model"]
    return summary


def _save_run(config, summary, model, print_fn):
    """The chief's last word: the finished model (written under a temporary name, then renamed) and summary.json."""
    if summary["finished"]:
        model_path = os.path.join(config.output_dir, "model.keras")
        tmp = os.path.join(config.output_dir, "model.tmp.keras")
        model.save(tmp)
        os.replace(tmp, model_path)
        summary["model"] = model_path
    write_json_atomic(os.path.join(config.output_dir, "summary.json"), summary)
    print_fn(
        f"\n{'finished' if summary['finished'] else 'stopped'} at step {summary['steps_done']}/{config.steps}; "
        f"last loss {summary['last_loss']}; {summary['pairs_per_second']} pairs/s; peak RSS {summary['peak_rss_mb']} MB"
    )
    if summary["finished"]:
        print_fn(f"model: {summary['model']}")
    print_fn(f"checkpoints: {os.path.join(config.output_dir, 'checkpoints')}; TensorBoard: {os.path.join(config.output_dir, 'logs')}")


def _read_summary(output_dir):
    path = os.path.join(output_dir, "summary.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _load_pairs(config, print_fn):
    from tf_dualenc.data.pairs import load_training_pairs

    pairs = load_training_pairs(
        config.data, data_format=config.data_format, split=config.split, title_separator=config.title_separator,
        lenient=config.lenient, shuffle_buffer=config.shuffle_buffer, num_negatives=config.num_negatives,
        validation_fraction=config.validation_fraction,
    )
    if pairs.skipped:
        print_fn(f"lenient mode skipped {sum(pairs.skipped.values())} records: {dict(pairs.skipped)}")
    if hasattr(pairs, "__len__") and len(pairs) < config.batch_size:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(pairs)} training pairs in {pairs.source}.")
    return pairs


def _validation_tracker(config, previous_summary):
    if not config.validation_fraction:
        return None
    from tf_dualenc.data.validation_split import load_validation
    from tf_dualenc.training.validation_tracker import ValidationTracker

    dataset = load_validation(config.data, fraction=config.validation_fraction, split=config.split, lenient=config.lenient)
    return ValidationTracker(dataset, config.output_dir, metric=config.validation_metric, title_separator=config.title_separator,
                             batch_size=config.encode_batch_size, ignore_identical_ids=config.ignore_identical_ids,
                             previous=(previous_summary or {}).get("validation"))
