"""netviz inside the Hugging Face Trainer: a tiny GPT-2 built from a config (no download).

Run: python examples/integrations/hf_trainer_example.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from netviz.integrations.transformers import NetvizCallback


class Tokens(torch.utils.data.Dataset):
    """Random token sequences; the labels are the inputs (causal LM)."""

    def __init__(self, n: int = 32, length: int = 12, vocab: int = 64):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, vocab, (n, length), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def main(
    out_dir: str = "hf_out",
    max_steps: int = 3,
    accumulate: int = 2,
    report_to="none",
    modules="transformer.h.*",
    max_grad_norm: float = 1.0,
):
    """Train a 1-layer GPT-2; return ``(trainer, callback)``."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=64,
        n_positions=16,
        n_embd=16,
        n_layer=1,
        n_head=2,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config)
    callback = NetvizCallback(probes=["grad_norm", "activation_stats"], modules=modules)
    args = TrainingArguments(
        output_dir=out_dir,
        max_steps=max_steps,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulate,
        logging_steps=1,
        learning_rate=1e-3,
        max_grad_norm=max_grad_norm,
        report_to=report_to,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])
    trainer.train()
    return trainer, callback


if __name__ == "__main__":
    _, cb = main(sys.argv[1] if len(sys.argv) > 1 else "hf_out")
    print("records saved to", cb.saved_to)
