"""segue's neural models.

Imports flow one way: the model adapters (``meanvar``; each a :class:`~segue.models.base.Recommender`) use
the shared training machinery (``training``, ``distributed``), which uses the settings (``config``); the
networks (``meanvar_net``) depend only on the settings.
"""
