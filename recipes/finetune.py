"""Fine-tune an hfsent model: ``accelerate launch recipes/finetune.py recipes/<recipe>.yaml [--key value ...]``.

A thin script over `hfsent.finetune.finetune`; ``hfsent train`` runs the same job.
"""

import sys

from hfsent.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
