"""Operations on a whole deployment: backup and restore, encryption key rotation.

``flask --app portal backup OUT``, ``flask --app portal restore IN`` and
``flask --app portal crypto rotate`` (see ``docs/deploy.md``).
"""
