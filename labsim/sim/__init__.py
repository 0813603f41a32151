"""The Postfix 3.7 smtpd simulator for learners who cannot run Postfix (its ``postconf`` work-alike
is ``labsim.maincf.postconf_alike``).

Postfix's behaviour is kept as data: ``labsim.maincf`` (main.cf syntax, expansion, defaults), ``replies``
(reply texts, levels, commands allowed before TLS); ``server`` extends aiosmtpd at its hooks with them.
"""
