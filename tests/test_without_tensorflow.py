"""The core runs without TensorFlow: corpus build and load, features, and the scalar writer fallback."""
import subprocess
import sys
import textwrap


def test_core_pipeline_without_tensorflow(tmp_path):
    script = textwrap.dedent(f"""
        import sys

        class HideTensorFlow:  # wraps an import finder so that TensorFlow looks uninstalled
            def __init__(self, inner):
                self.inner = inner
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    return None
                return self.inner.find_spec(name, path, target)
            def invalidate_caches(self):
                getattr(self.inner, "invalidate_caches", lambda: None)()

        sys.meta_path[:] = [HideTensorFlow(f) for f in sys.meta_path]
        from mer_jax.data.corpus import load_corpus
        from mer_jax.features.keyframe_flow import KeyframeFlowConfig, compute_keyframe_flow
        from mer_jax.train import writers
        corpus = load_corpus("synthetic_me/smoke", data_dir={str(tmp_path / "tfds")!r})
        arrays = compute_keyframe_flow(corpus, KeyframeFlowConfig(), cache_dir={str(tmp_path / "cache")!r},
                                       progress=False)
        writer = writers.create_writer({str(tmp_path / "run")!r})
        writer.write_scalars(1, {{"train/loss": 0.5}})
        assert isinstance(writer, writers.JsonlWriter), type(writer)
        assert "tensorflow" not in sys.modules
        print(len(corpus), arrays["flow"].shape, arrays["frames"].shape)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(60, 48, 48, 3) (60, 48, 48, 3)" in result.stdout
    assert '"train/loss": 0.5' in (tmp_path / "run" / "metrics.jsonl").read_text()
