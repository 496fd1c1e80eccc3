"""The fast tier's own machinery: bit-coded dropout masks, the helper thread, BatchNorm's row blocks,
Conv's workspace and the recurrent buffers (what the reference tier does not have)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from corenet_fast import batchnorm_sums, threads
from corenet_fast.batchnorm import BatchNormalization
from corenet_fast.conv import Conv
from corenet_fast.dropout import Dropout
from corenet_fast.dropout_mask import code_bits, keep_mask, random_codes
from corenet_fast.lstm import LSTM

# -- Dropout masks ---------------------------------------------------------------------------------------


def test_tiny_probability_keeps_the_right_number_of_units():
    # p * 2**16 = 0.5: the keep test must use the fraction below one 16-bit code, not round it to 0
    probability = 0.5 / 65536
    np.random.seed(7)
    kept = np.count_nonzero(keep_mask((1 << 22,), probability))  # expect 32, Poisson sd ~5.7
    assert 8 <= kept <= 64


def test_keep_mask_shape_and_certainty():
    mask = keep_mask((3, 4, 5), 0.5)
    assert mask.shape == (3, 4, 5) and mask.dtype == bool
    assert keep_mask((2, 3), 1.0).all()


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_random_codes_are_uniform(bits):
    np.random.seed(bits)
    count = 100_003  # not a multiple of the codes per byte
    codes = random_codes(count, bits)
    assert codes.shape == (count,) and codes.dtype == np.uint8
    frequencies = np.bincount(codes, minlength=1 << bits)
    assert frequencies.size == 1 << bits  # no code above 2**bits - 1
    expected = count / (1 << bits)
    chi_square = np.sum((frequencies - expected) ** 2 / expected)
    degrees = (1 << bits) - 1
    assert chi_square < degrees + 10 * np.sqrt(2 * degrees) + 10  # far in the tail (seeded anyway)


@pytest.mark.parametrize("probability, bits", [(0.5, 1), (0.25, 2), (0.75, 2), (0.0625, 4), (0.8, 8)])
def test_dyadic_probabilities_use_fewer_random_bits(probability, bits):
    np.random.seed(0)
    assert code_bits(probability) == bits
    kept = np.count_nonzero(keep_mask((1000, 1000), probability)) / 1e6
    assert kept == pytest.approx(probability, abs=5 * np.sqrt(probability * (1 - probability) / 1e6))


def test_two_threads_give_the_same_bits_as_one(monkeypatch):
    np.random.seed(1)
    x = np.random.standard_normal((512, 300))  # above threads.MIN_SPLIT
    error = np.random.standard_normal(x.shape)
    results = []
    for count in (1, 2):
        monkeypatch.setattr(threads, "THREADS", count)
        layer = Dropout(0.5)
        np.random.seed(5)
        results.append((layer.forward(x), layer.backward(error)))
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_array_equal(got, expected)
    kept = results[0][0] != 0
    np.testing.assert_array_equal(results[0][0][kept], x[kept] * 2.0)


def test_the_mask_buffer_is_reused_but_outputs_are_new():
    layer = Dropout(0.5)
    x = np.random.default_rng(0).normal(size=(20, 10)) + 3.0
    first = layer.forward(x)
    buffer = layer._mask
    saved = first.copy()
    layer.forward(x)
    assert layer._mask is buffer  # refilled in place
    np.testing.assert_array_equal(first, saved)


# -- BatchNormalization ---------------------------------------------------------------------------------


@pytest.mark.parametrize("testing", [False, True])
def test_blocks_of_rows_give_the_same_bits_as_one_block(monkeypatch, testing):
    # forward and input gradient run block by block over the batch; any block size gives the same result
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3, 5, 4)) * 2 + 1
    error = rng.standard_normal(x.shape)
    results = []
    for block in (1 << 20, 60, 1):  # one block; 1 row per block (60 elements per row); too small: 1 row
        monkeypatch.setattr(batchnorm_sums, "BLOCK_ELEMENTS", block)
        layer = BatchNormalization(3)
        layer.weights = np.array([0.5, 1.5, -2.0])
        layer.forward(x)
        layer.testing_phase = testing
        results.append((layer.forward(x), layer.backward(error), layer.gradient_weights))
    assert len(batchnorm_sums.row_blocks(x.reshape(7, 3, -1))) == 7
    for result in results[1:]:
        for got, expected in zip(result, results[0]):
            np.testing.assert_array_equal(got, expected)


def test_batchnorm_refuses_a_single_sample_training_batch_like_the_reference():
    with pytest.raises(ValueError, match="refusing a training batch of shape \\(1, 4\\)"):
        BatchNormalization(4).forward(np.ones((1, 4)))


# -- Conv's workspace and the recurrent buffers ------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3], ids=["batch-first", "batch-last"])
def test_conv_workspace_stays_out_of_copies_and_outputs_are_fresh(channels):
    conv = Conv((1, 1), (channels, 3, 3), 4)
    x = np.random.default_rng(1).normal(size=(6, channels, 9, 9))
    output = conv.forward(x)
    first = output.copy()
    gradient = conv.backward(np.ones_like(output))
    assert output.flags.c_contiguous and gradient.flags.c_contiguous
    conv.forward(x + 1.0)  # reuses the workspace: earlier results must not change
    np.testing.assert_array_equal(output, first)
    assert conv.__getstate__()["_workspace"] is None
    small = len(pickle.dumps(Conv((1, 1), (channels, 3, 3), 4)))
    assert len(pickle.dumps(conv)) < small + 1000  # no batch-sized buffer in a pickle
    twin = copy.deepcopy(conv)
    np.testing.assert_array_equal(twin.forward(x), conv.forward(x))


def test_conv_second_backward_rebuilds_the_im2col_matrix():
    conv = Conv((1, 1), (3, 3, 3), 2)
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 5))
    error = conv.forward(x)
    first = conv.backward(error), conv.gradient_weights.copy()
    second = conv.backward(error), conv.gradient_weights.copy()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_lstm_buffers_are_reused_per_length_and_not_pickled():
    layer = LSTM(3, 4, 2)
    rng = np.random.default_rng(3)
    layer.forward(rng.normal(size=(6, 3)))
    buffers = layer._workspace
    layer.forward(rng.normal(size=(6, 3)))
    assert layer._workspace is buffers
    layer.forward(rng.normal(size=(8, 3)))
    assert layer._workspace is not buffers
    state = layer.__getstate__()
    assert state["_workspace"] is None and state["_used"] is None
