"""Wires one node: peer server, discovery, gossip, election, node service and controller."""
