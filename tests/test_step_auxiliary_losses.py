"""The train step's auxiliary-loss hook (train/step.py): a model defining `auxiliary_losses(labels)` gets
those terms added to the configured loss, from values its training call kept on the model."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from mer_jax.data.augment import AugmentConfig
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import _apply, auxiliary_losses, fold_parallel, fold_values, train_step

K, N, FOLDS = 3, 8, 2


class Plain(nnx.Module):
    """BatchNorm -> Linear head; no auxiliary losses."""

    def __init__(self, rngs: nnx.Rngs):
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.head = nnx.Linear(4, K, rngs=rngs)

    def __call__(self, inputs, *, train: bool):
        return self.head(self.norm(inputs["x"], use_running_average=not train))


class WithAux(Plain):
    """Plain plus a side head that only its auxiliary loss reads (kept as an nnx.Intermediate in training)."""

    def __init__(self, rngs: nnx.Rngs):
        super().__init__(rngs)
        self.side = nnx.Linear(4, K, rngs=rngs)

    def __call__(self, inputs, *, train: bool):
        x = self.norm(inputs["x"], use_running_average=not train)
        if train:
            self.side_logits = nnx.Intermediate(self.side(x))
        return self.head(x)

    def auxiliary_losses(self, labels):
        log_p = jax.nn.log_softmax(self.side_logits.get_value(), -1)
        return {"side": -0.5 * jnp.take_along_axis(log_p, labels[:, None], -1).mean()}


def _data():
    rng = np.random.default_rng(0)
    return {"x": jnp.asarray(rng.normal(size=(N, 4)), jnp.float32), "label": jnp.arange(N) % K}


def _run(model_cls, loss_fn):
    """(states before, states after) one SGD(lr 1) step of FOLDS vmapped folds under jit, and the step's loss."""
    make = lambda rngs: model_cls(rngs)
    tx = optax.sgd(1.0)
    state = init_fold_states(make, tx, fold_keys(0, np.arange(FOLDS)))
    step = jax.jit(fold_parallel(train_step, graphdef=model_graphdef(make), tx=tx, loss_fn=loss_fn, input_keys=("x",),
                                 flow_keys=(), augment=AugmentConfig(variants=1)),
                   compiler_options={"xla_backend_optimization_level": 0})     # compiles faster
    ids = jnp.tile(jnp.arange(N), (FOLDS, 1))
    fold = fold_values(jnp.ones((FOLDS, K)), jnp.ones(FOLDS, bool))
    new_state, metrics = step(state, _data(), ids, jnp.zeros_like(ids), fold, jax.random.key(1))
    return state, new_state, jax.vmap(lambda m: m.compute())(metrics)["loss"]


def _aux_of_fold(state, f):
    """The side loss and its gradient for fold f, computed without the train step."""
    params = jax.tree.map(lambda x: x[f], state["params"])
    stats = jax.tree.map(lambda x: x[f], state["batch_stats"])
    graphdef = model_graphdef(WithAux)
    data = _data()

    def side_loss(p):
        model = nnx.merge(graphdef, p, stats, copy=True)
        model({"x": data["x"]}, train=True)
        return model.auxiliary_losses(data["label"])["side"]

    return jax.value_and_grad(side_loss)(params)


def test_auxiliary_terms_alone_train_the_parameters_they_read_in_every_fold():
    """Main loss zeroed: the side head moves by exactly minus the auxiliary gradient, the main head does not
    move, the reported loss is the auxiliary term, and BatchNorm statistics update as usual (vmapped folds)."""
    state, new, loss = _run(WithAux, lambda logits, labels, w: 0.0 * logits.sum())
    assert set(new["params"]) == {"norm", "head", "side"}
    assert jax.tree.structure(new["batch_stats"]) == jax.tree.structure(state["batch_stats"])
    for f in range(FOLDS):
        value, grads = _aux_of_fold(state, f)
        assert np.isclose(loss[f], value, rtol=1e-6)
        for name in ("kernel", "bias"):
            np.testing.assert_allclose(new["params"]["side"][name][f],
                                       state["params"]["side"][name][f] - grads["side"][name], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(new["params"]["head"][name][f], state["params"]["head"][name][f])
            assert np.abs(grads["side"][name]).max() > 0
    assert not np.allclose(loss[0], loss[1])          # each fold's term comes from its own parameters
    assert not np.allclose(new["batch_stats"]["norm"]["mean"], state["batch_stats"]["norm"]["mean"])


def _ce(logits, labels, class_weights):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), labels[:, None], -1).mean()


def _main_losses(model_cls, state):
    """loss_fn on each fold's training-mode logits, computed without the train step."""
    data, graphdef = _data(), model_graphdef(model_cls)
    out = []
    for f in range(FOLDS):
        params, stats = (jax.tree.map(lambda x: x[f], state[k]) for k in ("params", "batch_stats"))
        logits, _ = _apply(graphdef, params, stats, {"x": data["x"]}, train=True)
        out.append(_ce(logits, data["label"], None))
    return np.array(out)


def test_the_step_loss_is_the_main_loss_plus_the_auxiliary_terms():
    state, _, loss = _run(WithAux, _ce)
    side = np.array([_aux_of_fold(state, f)[0] for f in range(FOLDS)])
    np.testing.assert_allclose(loss, _main_losses(WithAux, state) + side, rtol=1e-6)


def test_models_without_the_method_keep_the_main_loss():
    state, _, loss = _run(Plain, _ce)
    np.testing.assert_allclose(loss, _main_losses(Plain, state), rtol=1e-6)
    assert auxiliary_losses(Plain(nnx.Rngs(0)), _data()["label"]) == {}


def test_intermediates_stay_on_the_called_copy():
    """The returned BatchNorm state holds BatchStat variables only, also after a call that kept intermediates."""
    graphdef = model_graphdef(WithAux)
    _, params, stats = nnx.split(WithAux(nnx.Rngs(0)), nnx.Param, nnx.BatchStat)
    _, new_stats = _apply(graphdef, params, stats, {"x": _data()["x"]}, train=True)
    assert jax.tree.structure(new_stats) == jax.tree.structure(stats)
    leaves = jax.tree.leaves(new_stats, is_leaf=lambda x: isinstance(x, nnx.Variable))
    assert leaves and all(isinstance(v, nnx.BatchStat) for v in leaves)
