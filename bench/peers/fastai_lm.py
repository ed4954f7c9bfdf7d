"""Peer: fastai 2.8.12 ``get_language_model(AWD_LSTM, ...)`` (AWD_LSTM + LinearDecoder) training steps.

Usage: python bench/peers/fastai_lm.py VOCAB EMB HID LAYERS BS BPTT STEPS WARMUP
Same config and dropouts as dlpipe's LM (fastai's awd_lstm_lm_config, drop_mult 1), same loop
(bench/peers/lm_loop.py). Prints one JSON line (median step seconds).
"""
import sys

from fastai.text.all import AWD_LSTM, awd_lstm_lm_config, get_language_model
from lm_loop import emit, main_args, time_steps


def main():
    vocab, emb, hid, layers, bs, bptt, steps, warmup = main_args(sys.argv[1:])
    cfg = {**awd_lstm_lm_config, "emb_sz": emb, "n_hid": hid, "n_layers": layers}
    model = get_language_model(AWD_LSTM, vocab, config=cfg, drop_mult=1.0)
    emit(time_steps(model, vocab, bs, bptt, steps, warmup))


if __name__ == "__main__":
    main()
