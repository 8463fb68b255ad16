"""Walking jaxprs in tests. A plain module, imported as `import jaxpr_testing` (pytest puts tests/ on the path)."""
import jax
import jax.extend


def equations(jaxpr):
    """Every equation of `jaxpr` and, depth first, of the jaxprs nested in its equations' parameters."""
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from equations(sub)


def conv_groups(fn, *args) -> list[int]:
    """feature_group_count of every convolution in the jaxpr of fn(*args)."""
    return [e.params["feature_group_count"] for e in equations(jax.make_jaxpr(fn)(*args).jaxpr)
            if e.primitive.name == "conv_general_dilated"]
