"""Grading a class's submissions with the conformance groups (``corenet grade``).

- :mod:`~corenet.grading.weights`: the fixed table of group weights (the course's, or the teacher's file);
- :mod:`~corenet.grading.submissions`: the sub-folders of a submissions folder, their kind, a shard of them;
- :mod:`~corenet.grading.plugin_project`: what a plugin project folder registers, read without installing it;
- :mod:`~corenet.grading.score`: partial credit per group from the contract tier, the JSON and CSV tables;
- :mod:`~corenet.grading.grade`: checking one submission (its own processes, one time limit) and many.
"""
