"""Count-based baselines for next-spike prediction, on exactly the model's tokens.

Scored targets are the spike tokens of each current window (BOS and EOS are not scored; the
model's own NLL on the same targets uses its full softmax, which also gives mass to EOS, so the
comparison cannot favour the model). Fitted on the train split, scored on another split, with
add-``alpha`` (Laplace) smoothing over the unit tokens.

* unigram: P(unit) = frequency of the unit among train spike tokens.
* Markov (first order): P(unit | previous spike's unit). For the first spike of a window the
  previous spike is the last token of the past window (if the past is empty: a "none" state).
* marginal dt: P(dt bin) = frequency of the dt bin among train spike tokens.
* Markov dt (first order): P(dt bin | previous spike's dt bin in the same current window); the
  first spike of a window has a "window start" state. Spikes are tokenized in dt order, so a
  dt is never before the previous one: this baseline knows that (its smoothing gives mass only
  to the bins at or after the previous spike's; and it knows how dense the window
  is so far), the marginal one does not. It is the fair reference for the model's dt head,
  which sees the previous tokens' dt (a metrics audit found the marginal one ~1.2-2 nats
  weaker on A2929, Allen and Steinmetz windows).
"""

from __future__ import annotations

from typing import Dict, Iterable

import numpy as np

from ..configuration_neuroformer import is_finite_number


def _spike_pairs(examples: Iterable[dict], bos: int, eos: int, pad: int):
    """Yield ``(previous_unit_or_None, unit, dt_bin, previous_dt_bin_or_-1)`` for every spike
    token of every window (the previous unit may be the past window's last, None where there is
    none: -1 was also a token id a caller could pass; the previous dt bin is the current window's
    previous spike's, -1 for its first spike)."""
    for ex in examples:
        past = [t for t in ex["past_input_ids"] if t not in (bos, eos, pad)]
        prev = past[-1] if past else None
        prev_dt = -1
        for tok, dt in zip(ex["input_ids"], ex["dt_ids"]):
            if tok in (bos, pad):
                continue
            if tok == eos:
                break
            yield prev, tok, dt, prev_dt
            prev, prev_dt = tok, dt


class TokenBaselines:
    """Unigram and first-order Markov unit baselines, marginal and first-order Markov dt
    baselines (see the module docstring).

    Args:
        vocab_size: number of token ids.
        unit_token_ids: token ids that are units (the support of the smoothed distributions).
        num_dt_bins: number of dt classes.
        alpha: Laplace pseudo-count, a finite number > 0 (a Python or numpy number, or a 0-d
            numeric array such as ``np.array(0.5)``).

    Raises:
        ValueError: ``alpha`` not a finite number > 0 (0 gave a unit unseen in training probability
            0, refused by :meth:`score` as "not one of the baseline's unit tokens"; a negative one gave
            negative probabilities, scored as NaN or as a perfect 0 nats).
    """

    def __init__(self, vocab_size: int, unit_token_ids, num_dt_bins: int, alpha: float = 1.0,
                 bos: int = 1, eos: int = 2, pad: int = 0):
        if isinstance(alpha, np.ndarray) and alpha.ndim == 0:  # np.array(0.5): its number (a bool one is refused below)
            alpha = alpha[()]
        if not (is_finite_number(alpha) and alpha > 0):
            raise ValueError(f"alpha: expected a finite Laplace pseudo-count > 0, got {alpha!r}")
        self.units = np.asarray(sorted(set(int(u) for u in unit_token_ids)), dtype=np.int64)
        # a float: any real number passes (a Fraction made every distribution an object array)
        self.vocab_size, self.num_dt_bins, self.alpha = vocab_size, num_dt_bins, float(alpha)
        self.bos, self.eos, self.pad = bos, eos, pad
        self.fitted = False

    def fit(self, examples: Iterable[dict]) -> "TokenBaselines":
        """Count the spike tokens of ``examples`` (train windows) and smooth; returns ``self``.

        Args:
            examples: window rows with ``input_ids``, ``dt_ids`` (``(seq_len,)`` ints, dt ids in
                ``[0, num_dt_bins)``) and ``past_input_ids``, as :func:`~hf_neuroformer.windows.build_window_datasets`
                stores them.

        Raises:
            ValueError: a spike's token id outside ``[0, vocab_size)`` or dt id outside
                ``[0, num_dt_bins)``, or a past window's last token id outside ``[0, vocab_size)``,
                naming the field and the id (a negative id was counted silently at the other end of the
                tables, numpy's negative indexing; one too large failed with numpy's IndexError).
        """
        v = self.vocab_size
        self.uni = np.zeros(v)
        self.bi = np.zeros((v + 1, v))  # row v = "no previous spike"
        self.dt = np.zeros(self.num_dt_bins)
        self.dt_bi = np.zeros((self.num_dt_bins + 1, self.num_dt_bins))  # row num_dt_bins = window start
        for prev, tok, dt, prev_dt in _spike_pairs(examples, self.bos, self.eos, self.pad):
            if not 0 <= tok < v:
                raise ValueError(f"examples: expected input_ids in [0, {v}) (vocab_size), got token id {tok}")
            if not 0 <= dt < self.num_dt_bins:
                raise ValueError(f"examples: expected dt_ids in [0, {self.num_dt_bins}) (num_dt_bins), got dt id {dt}")
            if prev is not None and not 0 <= prev < v:
                raise ValueError(f"examples: expected past_input_ids in [0, {v}) (vocab_size), got token id {prev}")
            self.uni[tok] += 1
            self.bi[v if prev is None else prev, tok] += 1
            self.dt[dt] += 1
            self.dt_bi[prev_dt if prev_dt >= 0 else self.num_dt_bins, dt] += 1
        mask = np.zeros(v, dtype=bool)
        mask[self.units] = True
        a = self.alpha
        self.p_uni = np.where(mask, self.uni + a, 0.0)
        self.p_uni /= self.p_uni.sum()
        self.p_bi = np.where(mask[None], self.bi + a, 0.0)
        self.p_bi /= self.p_bi.sum(1, keepdims=True)
        self.p_dt = (self.dt + a) / (self.dt + a).sum()
        # after a spike in bin d the next one lies in bin d or later (dt order): the pseudo-count goes
        # to those bins only (it gave mass to earlier bins, which no window holds)
        d = np.arange(self.num_dt_bins)
        possible = np.vstack([d[None] >= d[:, None], np.ones((1, self.num_dt_bins), dtype=bool)])
        self.p_dt_bi = np.where(possible, self.dt_bi + a, 0.0)
        self.p_dt_bi /= self.p_dt_bi.sum(1, keepdims=True)
        self.fitted = True
        return self

    def score(self, examples: Iterable[dict]) -> Dict[str, float]:
        """Mean NLL (nats per spike token) of each baseline on ``examples`` (rows as :meth:`fit`).

        Returns:
            ``{"unigram_id_nll", "markov_id_nll", "marginal_dt_nll", "markov_dt_nll"}`` floats
            (NaN when there is no spike token) and ``"n_spike_tokens"`` int.

        Raises:
            RuntimeError: :meth:`fit` was not called.
            ValueError: a spike token that is not one of ``unit_token_ids`` (a negative id included);
                a dt id outside ``[0, num_dt_bins)`` or a past token id outside ``[0, vocab_size)``; a
                spike whose dt bin is before the previous spike's in the same window (not the
                tokenizer's order).
        """
        if not self.fitted:
            raise RuntimeError("TokenBaselines.score: call fit(train_examples) first")
        v = self.vocab_size
        n, s_uni, s_bi, s_dt, s_dt_bi = 0, 0.0, 0.0, 0.0, 0.0
        for prev, tok, dt, prev_dt in _spike_pairs(examples, self.bos, self.eos, self.pad):
            if not 0 <= tok < v or self.p_uni[tok] == 0:  # a negative id was read from the other end
                raise ValueError(f"input_ids: token {tok} is not one of the baseline's unit tokens")
            if not 0 <= dt < self.num_dt_bins:
                raise ValueError(f"dt_ids: expected dt ids in [0, {self.num_dt_bins}) (num_dt_bins), got {dt}")
            if prev is not None and not 0 <= prev < v:
                raise ValueError(f"past_input_ids: expected token ids in [0, {v}) (vocab_size), got {prev}")
            s_uni -= np.log(self.p_uni[tok])
            s_bi -= np.log(self.p_bi[v if prev is None else prev, tok])
            s_dt -= np.log(self.p_dt[dt])
            p = self.p_dt_bi[prev_dt if prev_dt >= 0 else self.num_dt_bins, dt]
            if p == 0:
                raise ValueError(f"dt_ids: a spike in dt bin {dt} after one in bin {prev_dt} of the same window; "
                                 "expected the tokenizer's dt order (a bin never before the previous spike's)")
            s_dt_bi -= np.log(p)
            n += 1
        if n == 0:
            return {"unigram_id_nll": float("nan"), "markov_id_nll": float("nan"),
                    "marginal_dt_nll": float("nan"), "markov_dt_nll": float("nan"), "n_spike_tokens": 0}
        return {
            "unigram_id_nll": s_uni / n,
            "markov_id_nll": s_bi / n,
            "marginal_dt_nll": s_dt / n,
            "markov_dt_nll": s_dt_bi / n,
            "n_spike_tokens": n,
        }


__all__ = ["TokenBaselines"]
