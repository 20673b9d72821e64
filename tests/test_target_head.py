"""The LM head on target positions only: the same loss and gradients as the kept-logits loss, fewer rows."""
import pytest

torch = pytest.importorskip("torch")

from scotd_kit import prompts, training  # noqa: E402
from scotd_kit.models import load_model  # noqa: E402


def _features(tok, n=6):
    insts = [{"id": f"q{i}", "input": prompts.student_input(f"What is {i} plus {i % 5}?" + " Think." * (i % 7)),
              "targets": [prompts.target(f"{i} plus {i % 5} is {i + i % 5}." + " Yes." * (i % 3), str(i + i % 5))]}
             for i in range(n)]
    t = training.Tokenized(insts, tok, max_length=128)
    return [dict(zip(("input_ids", "n_prompt"), t.sequence(i, 0))) for i in range(n)]


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
@pytest.mark.parametrize("left", [True, False])
def test_target_head_gives_the_same_loss_and_gradients(name, left):
    model, tok = load_model(name, dtype=torch.float32)
    model.eval()   # no dropout: the two forward passes must see the same network (gradients still flow)
    batch = training.Collator(tok.pad_token_id, left=left)(_features(tok))
    labels = batch.pop("labels")

    reference = training.target_loss(model(**batch), labels)
    reference.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    head = training.TargetHead().attach(model)
    assert head.attached
    keep = batch.get("logits_to_keep") or labels.shape[1]
    head.select, gold = head.positions(labels, keep)
    out = model(**batch)
    assert out.logits.shape[:2] == (1, int(labels.ne(-100).sum()))   # one row per target token
    assert gold.numel() == out.logits.shape[1]
    loss = head.loss(out, labels)
    head.select = None
    loss.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    for n, p in model.named_parameters():
        if n in ref_grads:
            assert torch.allclose(p.grad, ref_grads[n], atol=1e-6, rtol=1e-4), n
    # with select unset the head is the model's own again (generation and evaluation)
    with torch.no_grad():
        assert model(**batch).logits.shape[0] == labels.shape[0]


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-opt"])
def test_a_sparse_tied_embedding_gives_the_same_dense_gradients(name):
    """The kit's full fine-tuning makes a tied input embedding's gradient sparse: the parameter's
    gradient must stay dense (AdamW and clipping need it) and equal the dense computation's."""
    model, tok = load_model(name, dtype=torch.float32)
    model.eval()
    batch = training.Collator(tok.pad_token_id, left=True)(_features(tok))
    labels = batch.pop("labels")
    grads = []
    for sparse in (False, True):
        if sparse:
            assert training.sparse_tied_embedding_grad(model)
        model.zero_grad()
        training.target_loss(model(**batch), labels).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for n, g in grads[1].items():
        assert not g.is_sparse, n
        assert torch.allclose(g, grads[0][n], atol=1e-7, rtol=1e-5), n


def test_an_untied_embedding_stays_dense():
    model, _ = load_model("tiny-llama", dtype=torch.float32)
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone())    # untie
    assert not training.sparse_tied_embedding_grad(model)
    assert not model.get_input_embeddings().sparse
