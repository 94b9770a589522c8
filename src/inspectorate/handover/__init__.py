"""Handing over for re-computation: what a workload writes so the verifier can re-run
its serving, its evaluation or its training with the verifier's own code.

Run under ``inspectorate capture`` (it sets ``INSPECTORATE_RUN_DIR``; the sensor's start
record carries the challenge nonce), with the claims file's ``models:`` describing the
model a phase declares. Everything lands under ``RUN/claims/<phase>/``::

    from inspectorate import handover

    log = handover.served("serve", model, "my-llama", temperature=T, top_p=0.9,
                          rank=rank, world=world)                 # weights + served.jsonl
    g = log.noise(None, B, steps, V)                              # keyed Gumbel noise
    tok = log.pick(logits, g[:, j])                               # the sampler, per position
    log.log(prompts, tokens); log.close()                         # rank 0 merges the parts

    ev = handover.evaluated("eval", model, "my-llama")             # weights + eval batches
    ev.batch(ids, loss); ev.close()

    tr = handover.training("train", model, opt, "my-llama", corpus=PATH, seq_len=T,
                           grad_accum=k, clip_grad_norm=1.0)      # fresh start, seeded
    ... opt.step(); tr.step(starts); sched.step() ...
    tr.finish()                                                   # manifest + claim.json

docs/capture.md ("Handing over for re-computation") says what the verifier checks.
torch is imported only when a handover is opened.
"""

from inspectorate.handover._common import challenge_seed, run_dir
from inspectorate.handover._served import EvalLog, ServedLog, evaluated, keyed_noise, served, write_weights
from inspectorate.handover._training import TrainingHandover, declared_optimizer, training

__all__ = [
    "EvalLog",
    "ServedLog",
    "TrainingHandover",
    "challenge_seed",
    "declared_optimizer",
    "evaluated",
    "keyed_noise",
    "run_dir",
    "served",
    "training",
    "write_weights",
]
