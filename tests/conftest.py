import os

import hypothesis

# Bounded property tests: CI runs on 2 cores within a time budget.
hypothesis.settings.register_profile(
    'ci', max_examples=int(os.environ.get('BRAINEVENT_EXAMPLES', 12)), deadline=None,
    derandomize=True, print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large])
hypothesis.settings.register_profile(
    'thorough', max_examples=200, deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile(os.environ.get('BRAINEVENT_HYPOTHESIS_PROFILE', 'ci'))


import pytest  # noqa: E402

import brainevent  # noqa: E402

CPU_BACKENDS = brainevent.backends.all_kernels()['csr_matmul'].backends('cpu')


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Run the test with each backend registered on the CPU as the global default."""
    with brainevent.config.backend(request.param):
        yield request.param


@pytest.fixture(autouse=True, scope='module')
def _fresh_jax_caches():
    """Drop compiled functions after each module: a long session otherwise slows down."""
    yield
    import jax
    jax.clear_caches()
