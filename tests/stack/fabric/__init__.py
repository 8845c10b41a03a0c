"""The local stack's VPC network fabric: each endpoint of the VPC in its own network namespace, one router
namespace forwarding every packet between them and to the internet addresses.

``nft`` compiles the VPC's security groups, network ACLs and routes, read from the local AWS endpoint
(``snapshot``), into the router's nftables ruleset; ``policy`` holds the same semantics in Python (``explain``).
"""
