"""Data layers: ``next() -> (input, one-hot label)`` and ``get_test_set()``.

iris: IrisData; digits: DigitData; mnist: MNISTData; synthetic: RandomData.
"""
