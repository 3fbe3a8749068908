"""What `train-reranker` and `train-joint` share: the candidate-list arguments, reading the lists, the training record."""

import os

from tf_dualenc.atomic_write import write_json_atomic


def add_list_arguments(p):
    p.add_argument("--data", required=True, help="training-pair JSONL with negatives (from mine-negatives)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="a new folder (existing models are never overwritten)")
    p.add_argument("--list-size", type=int, default=4, help="candidates per list: the positive + N-1 negatives (default: %(default)s)")
    p.add_argument("--steps", type=int, default=500, help="training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="lists per step (default: %(default)s)")
    p.add_argument("--warmup-steps", type=int, default=0, help="steps of linear learning-rate warm-up (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="draws each list's negatives and the list order (default: %(default)s)")
    p.add_argument("--log-every", type=int, default=10, help="print the loss every N steps (default: %(default)s)")
    p.add_argument("--lenient", action="store_true", help="skip bad records instead of failing")


def training_lists(args):
    from tf_dualenc.reranking import read_candidate_lists

    lists, skipped = read_candidate_lists(args.data, args.list_size, seed=args.seed, lenient=args.lenient)
    validation = read_candidate_lists(args.validation_data, args.list_size, lenient=args.lenient)[0] if getattr(args, "validation_data", None) else None
    if skipped:
        print(f"lenient mode skipped {sum(skipped.values())} records: {skipped}")
    return lists, validation


def write_training_record(output_dir, inputs, settings, lists, history):
    """training.json: where the models and lists came from (`inputs`), exactly the settings the training function
    was called with (`settings`), the list count and the history — enough to repeat the run. Returns the record."""
    record = {"inputs": inputs, "settings": settings, "lists": len(lists), **history}
    write_json_atomic(os.path.join(output_dir, "training.json"), record)
    return record
