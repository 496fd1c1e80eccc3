"""Conformance tests of TanH, Sigmoid, RNN and LSTM, and their helpers (test code: imports pytest)."""
