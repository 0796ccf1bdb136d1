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
