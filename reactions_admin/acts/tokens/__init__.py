"""Issue and revoke API tokens (audited), and find the user a token stands for."""
