"""Example models built on brainevent, small enough to read and copy.

``coba``: the COBA E/I network of leaky integrate-and-fire neurons with
conductance synapses (the model behind ``brainevent demo``).
"""
