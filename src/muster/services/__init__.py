"""What is neither HTTP nor storage: the approval lifecycle, submission, the webhook
outbox, key rotation and the reaper loop.

Each service takes a :class:`~muster.store.base.Store` (and the collaborators it
names: an audit log, a clock, a notifier), never the web app or a request, so
the server, ``muster worker`` and the CLI run the same code. Request-derived
facts (who asks, from which address) arrive as an
:class:`~muster.services.actor.Actor`. Import the module you use
(``muster.services.approvals``, ``.submission``, ``.keys``, ``.reaper``,
``.webhooks``): this package imports nothing eagerly, so a command pays only
for what it runs.
"""
