"""Evaluation: questions with known answers (questions), their metrics
(metrics), runs of search (retrieval) and of checked answers (answers), and
the runs table that records them (runs)."""
