"""MLM pretraining recipe, for ``accelerate launch`` (the same as ``hfsent pretrain``).

accelerate launch recipes/pretrain.py recipes/pretrain/zh-mini.yaml [--key value ...]
"""

import sys

from hfsent.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
