"""The Postfix 3.7 smtpd simulator for learners who cannot run Postfix, and its ``postconf`` work-alike.

Postfix's behaviour is kept as data: ``mainconf`` (main.cf syntax, expansion, defaults), ``replies``
(reply texts, levels, commands allowed before TLS); ``server`` extends aiosmtpd at its hooks with them.
"""
