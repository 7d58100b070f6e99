"""Channel layouts: the constraints a network puts on them, the solver that picks them, the rewrite that applies
them. :class:`~prunex.passes.propagate_permutations.PropagatePermutations` is the pass built on them."""
