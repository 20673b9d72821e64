"""Curation: SCoTD's filter and its statistics, training instances, baselines, downsampling, nested subsets."""
import pytest

from scotd_kit import curation, prompts
from scotd_kit.io import DataError
from scotd_kit.tasks import Example

EXAMPLES = [Example(id=f"i{k}", question=f"question {k}", label="(a)") for k in range(4)]


def rec(iid, s, correct, answer=None, rationale=None, logprob=None, settings=None):
    return {"key": f"{iid}/{s}", "task": "t", "instance_id": iid, "index": sum(map(ord, iid)), "sample_index": s,
            "teacher": "T", "settings": settings or {"temperature": 1.0}, "gold": "(a)",
            "text": "", "rationale": rationale if rationale is not None else f"because {iid} {s}",
            "answer": answer or ("(a)" if correct else "(b)"), "answer_flexible": None,
            "correct": correct, "correct_flexible": correct, "parse_status": "ok", "mean_logprob": logprob,
            "prompt_tokens": 10, "completion_tokens": 5}


def fixture_corpus():
    # i0: 3/4 correct, i1: 0/3 correct, i2: 2/2 correct, i3: 1/3 correct -> 6 of 12 kept, i1 dropped
    pattern = {"i0": [1, 1, 0, 1], "i1": [0, 0, 0], "i2": [1, 1], "i3": [0, 1, 0]}
    return [rec(i, s, bool(c)) for i, cs in pattern.items() for s, c in enumerate(cs)]


def test_filter_stats_match_hand_count():
    stats = curation.filter_stats(fixture_corpus())
    assert stats == {"samples": 12, "kept": 6, "dropped_share": pytest.approx(0.5), "instances": 4,
                     "instances_dropped": 1}
    kept = curation.filter_correct(fixture_corpus())
    assert len(kept) == 6 and {r["instance_id"] for r in kept} == {"i0", "i2", "i3"}


def test_full_setting_trains_on_the_teachers_text_of_correct_cots():
    insts = curation.build_instances(fixture_corpus(), EXAMPLES, "full")
    assert [i["id"] for i in insts] == ["i0", "i2", "i3"]
    assert insts[0]["input"] == "Q: question 0\nA: "
    assert insts[0]["targets"] == [prompts.target(f"because i0 {s}", "(a)") for s in (0, 1, 3)]
    assert insts[0]["targets"][0] == "because i0 0 So the answer is: (a)\n\n"


def test_few_shot_setting_keeps_wrong_cots_with_their_answers():
    insts = curation.build_instances(fixture_corpus(), EXAMPLES, "few_shot")
    assert [len(i["targets"]) for i in insts] == [4, 3, 2, 3]
    assert insts[1]["targets"][0] == "because i1 0 So the answer is: (b)\n\n"


def test_baselines():
    lab = curation.label_only_instances(EXAMPLES[:2])
    assert lab[0] == {"id": "i0", "input": "Q: question 0\nA: ", "targets": ["So the answer is: (a)\n\n"]}
    corpus = fixture_corpus() + [rec("i3", 9, True, rationale="greedy one", settings={"temperature": 0})]
    greedy = curation.greedy_cot_instances(corpus, EXAMPLES)
    assert [len(i["targets"]) for i in greedy] == [1, 1, 1, 1]
    assert greedy[3]["targets"] == ["greedy one So the answer is: (a)\n\n"]   # the greedy record, not sample 0
    assert greedy[0]["targets"] == ["because i0 0 So the answer is: (a)\n\n"]
    full = curation.greedy_cot_instances(corpus, EXAMPLES, setting="full")
    assert [i["id"] for i in full] == ["i0", "i2", "i3"]                    # i1's greedy CoT is wrong


def test_downsample_random_is_seeded_and_bounded():
    corpus = [rec("i0", s, True) for s in range(10)] + [rec("i1", s, True) for s in range(2)]
    a = curation.downsample_random(corpus, 3, seed=1)
    assert a == curation.downsample_random(corpus, 3, seed=1)
    assert sum(r["instance_id"] == "i0" for r in a) == 3 and sum(r["instance_id"] == "i1" for r in a) == 2
    assert any(curation.downsample_random(corpus, 3, seed=s) != a for s in range(2, 6))


def test_downsample_likelihood_takes_the_top_k():
    corpus = [rec("i0", s, True, logprob=lp) for s, lp in enumerate([-3.0, -0.5, -2.0, -0.1, -9.0])]
    assert [r["sample_index"] for r in curation.downsample_likelihood(corpus, 2)] == [3, 1]
    corpus[2]["mean_logprob"] = None
    with pytest.raises(DataError, match=r"key='i0/2'.*mean_logprob"):
        curation.downsample_likelihood(corpus, 2)


def test_downsample_diversity_takes_one_per_cluster():
    # three tight groups of paraphrases; k=3 must take one from each group
    groups = {"apple": [0, 1, 2, 3], "river": [4, 5], "engine": [6, 7, 8]}
    axis = {"apple": 0, "river": 1, "engine": 2}
    corpus, vec = [], {}
    for word, idx in groups.items():
        for j, s in enumerate(idx):
            text = f"{word} reason {s}"
            corpus.append(rec("i0", s, True, rationale=text))
            v = [0.0, 0.0, 0.0]
            v[axis[word]] = 1.0 + 0.01 * j
            vec[text] = v
    picked = curation.downsample_diversity(corpus, 3, embed=lambda texts: [vec[t] for t in texts])
    assert sorted(r["rationale"].split()[0] for r in picked) == ["apple", "engine", "river"]


def test_downsample_diversity_with_minilm():
    pytest.importorskip("sentence_transformers")
    texts = ["The sun is a star that gives light.", "The sun is a bright star giving light.",
             "Fish live in water and swim.", "Fish swim in the water where they live.",
             "Cars need fuel to drive.", "A car drives on fuel."]
    corpus = [rec("i0", s, True, rationale=t) for s, t in enumerate(texts)]
    picked = curation.downsample_diversity(corpus, 3)
    assert sorted(r["sample_index"] // 2 for r in picked) == [0, 1, 2]


def test_open_endedness_gives_more_cots_to_open_instances():
    corpus = []
    for n in range(5):                       # instance n has n+1 distinct-word rationales -> ranked by n
        iid = f"i{n}"
        for s in range(10):
            words = " ".join(f"w{n}_{s}_{j}" for j in range(n + 1)) if s <= n else "same words here"
            corpus.append(rec(iid, s, True, rationale=f"{words} end"))
    kept = curation.downsample_open_endedness(corpus, seed=0)
    counts = [sum(r["instance_id"] == f"i{n}" for r in kept) for n in range(5)]
    assert counts == [1, 3, 5, 7, 9]
    assert curation.unique_bigrams(["a b c", "a b d"]) == 3


def test_first_n_and_subsets_are_nested():
    corpus = [rec(f"i{k}", s, True) for k in range(3) for s in reversed(range(6))]
    small, big = curation.first_n_per_instance(corpus, 2), curation.first_n_per_instance(corpus, 5)
    assert {r["key"] for r in small} < {r["key"] for r in big}
    assert {r["sample_index"] for r in small} == {0, 1}
    insts = [{"id": f"x{k}", "input": "", "targets": ["t"]} for k in range(50)]
    sizes = [0.2, 0.4, 0.6, 1.0]
    subsets = [{i["id"] for i in curation.subset_instances(insts, f, seed=7)} for f in sizes]
    assert [len(s) for s in subsets] == [10, 20, 30, 50]
    assert all(a < b for a, b in zip(subsets, subsets[1:]))
    assert subsets[0] != {i["id"] for i in curation.subset_instances(insts, 0.2, seed=8)}


def test_errors_name_the_record_and_the_filter():
    bad = fixture_corpus()
    del bad[5]["correct"]
    with pytest.raises(DataError, match=r"corpus record 5 \(key='i1/1'\): missing field 'correct'"):
        curation.filter_correct(bad)
    wrong = [rec("i0", s, False) for s in range(3)]
    with pytest.raises(curation.EmptySelectionError, match="filter_correct left none of 3 records"):
        curation.build_instances(wrong, EXAMPLES, "full")
    with pytest.raises(DataError, match=r"key='zz/0'.*not among the 4 examples"):
        curation.build_instances([rec("zz", 0, True)], EXAMPLES, "full")
    with pytest.raises(ValueError, match="unknown downsampling strategy"):
        curation.downsample(fixture_corpus(), "longest")


# ---------------------------------------------------------------- Fig. 7 as the paper ran it

def _fig7_corpus():
    """6 instances x 12 CoTs, a third of them wrong; instance n's rationales grow more varied with n."""
    out = []
    for n in range(6):
        for s in range(12):
            words = " ".join(f"w{n}_{s % (n + 1)}_{j}" for j in range(3))
            out.append(rec(f"i{n}", s, s % 3 != 0, rationale=f"{words} end", logprob=-0.1 * s))
    return out


@pytest.mark.parametrize("strategy", curation.STRATEGIES)
def test_fig7_every_strategy_spends_the_same_budget_on_correct_cots_only(strategy):
    corpus, k = _fig7_corpus(), 3
    embed = (lambda texts: [[float(len(t)), float(t.count("_1_")), float(hash(t) % 7)] for t in texts])
    kw = {"embed": embed} if strategy == "diversity" else {}
    picked = curation.fig7_records(corpus, strategy, k=k, seed=0, **kw)
    assert all(r["correct"] for r in picked)                       # filter first: C' only
    counts = [sum(r["instance_id"] == f"i{n}" for r in picked) for n in range(6)]
    assert sum(counts) == k * 6                                    # the same budget for every strategy
    if strategy != "open_endedness":
        assert counts == [k] * 6                                   # ... and per instance
    else:
        assert counts[0] < counts[-1]                              # more to the open-ended ones


def test_open_endedness_honours_k():
    corpus = [rec(f"i{n}", s, True, rationale=" ".join(f"w{n}_{s}_{j}" for j in range(n + 1)))
              for n in range(10) for s in range(12)]
    for k in (2, 5, 8):
        kept = curation.downsample_open_endedness(corpus, k=k, seed=0)
        assert len(kept) == 10 * k
    assert curation.open_endedness_quotas([10] * 5, 5) == [1, 3, 5, 7, 9]
    # an instance short of k CoTs lowers the budget for every strategy alike: min(k, available) summed
    assert curation.open_endedness_quotas([1, 10, 10, 10, 10], 5) == [1, 2, 4, 6, 8]
    assert sum(curation.open_endedness_quotas([10, 10, 10, 10, 2], 5)) == 22


def test_diversity_picks_a_random_member_of_each_cluster():
    """Not the centroid's nearest member: over seeds, more than one member of a cluster is chosen."""
    corpus, vec = [], {}
    for s in range(8):
        text = f"{'apple' if s < 4 else 'river'} reason {s}"
        corpus.append(rec("i0", s, True, rationale=text))
        vec[text] = [1.0 if s < 4 else 0.0, 0.0 if s < 4 else 1.0, 0.01 * s]
    embed = lambda texts: [vec[t] for t in texts]                  # noqa: E731
    picks = {tuple(r["sample_index"] for r in curation.downsample_diversity(corpus, 2, seed=seed, embed=embed))
             for seed in range(12)}
    assert all(a < 4 <= b for a, b in picks)                       # one per cluster, always
    assert len(picks) > 2                                          # random within the cluster


def test_fraction_subsets_the_examples_before_filtering():
    """Fig. 3: the same instances for every line, chosen among D_train before the filter."""
    examples = [Example(id=f"i{k}", question=f"q{k}", label="(a)") for k in range(20)]
    half = curation.subset_instances(examples, 0.5, seed=3)
    assert len(half) == 10 and all(isinstance(e, Example) for e in half)
    assert {e.id for e in half} == {i["id"] for i in curation.subset_instances(
        [{"id": e.id} for e in examples], 0.5, seed=3)}


def test_fig7_strategies_train_on_the_same_number_of_cots_when_instances_run_short():
    """Random, likelihood and diversity keep min(k, available) CoTs per instance; open-endedness must spend that
    same total, not k per instance (handing what short instances cannot use to the others would give it more
    CoTs to train on than the strategies it is compared with)."""
    corpus = []
    for n, available in enumerate((1, 2, 12, 12, 12, 12, 12, 12, 12, 12)):
        corpus += [rec(f"i{n}", s, True, rationale=" ".join(f"w{n}_{s}_{j}" for j in range(n + 1)), logprob=-0.1 * s)
                   for s in range(available)]
    k = 5
    embed = (lambda texts: [[float(len(t)), float(t.count("_1_")), float(hash(t) % 7)] for t in texts])
    sizes = {s: len(curation.fig7_records(corpus, s, k=k, seed=0, **({"embed": embed} if s == "diversity" else {})))
             for s in curation.STRATEGIES}
    assert sizes["random"] == 1 + 2 + 8 * k
    assert set(sizes.values()) == {sizes["random"]}, sizes
    assert sum(curation.open_endedness_quotas([1, 10, 10, 10, 10], 5)) == 21
