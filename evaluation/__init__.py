"""MedVidBench evaluation: leaderboard-exact scoring, submission export, reports."""
