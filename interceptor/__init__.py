"""meshproxy's interceptor: the iptables capture rules the init container installs.

Options become a rule model (``plan``), the model becomes ``iptables-restore`` text
(``render``), and a backend applies it atomically per table and address family.
"""
