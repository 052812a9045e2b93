"""A rule-based stand-in grader for trainer tests: the tiny models rarely earn a real reward,
so rewards follow a fixed rule on the text (groups have variance) and oracle labels another."""

from vgrout.types import Grade


class RuleGrader:
    """Rewards from a fixed rule on the text; oracle labels from another rule (optionally scrambled)."""

    def __init__(self, scramble: bool = False) -> None:
        self.scramble = scramble
        self.calls = 0

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def grade(self, requests):
        out = []
        for i, req in enumerate(requests):
            h = sum(map(ord, req.completion))
            reward = [0.0, 0.5, 3.5][h % 3]
            hack, solve = h % 2 == 0, h % 5 == 0
            if self.scramble:
                hack, solve = (i + self.calls) % 2 == 1, (i * 7 + self.calls) % 3 == 0
            out.append(Grade(reward=reward, format_ok=True, gt_correct=solve, channel_fired=hack, exploited=hack,
                             mode=req.mode))
        self.calls += 1
        return out
