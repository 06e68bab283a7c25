"""The Acme provider for synapsekit: the declaration the entry point names.

This module stays light (it imports only synapsekit's plugin declaration): synapsekit loads
it when it reads the entry points; the class in :mod:`acme_synapsekit.llm` is imported
only when an Acme LLM is built.
"""

from synapsekit.llm.plugins import ProviderPlugin

PROVIDER = ProviderPlugin(
    name="acme",
    llm="acme_synapsekit.llm:AcmeLLM",
    prefixes=("acme-",),
    env_vars=("ACME_API_KEY",),
    base_url="https://api.acme.invalid/v1",
    base_url_env="ACME_BASE_URL",
    sdk="openai",
    install='pip install "acme-synapsekit"',
)
