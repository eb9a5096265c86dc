"""A class on one machine: each learner's share of its devices, cores and memory (:mod:`.leases`),
what the machine has (:mod:`.room`), and what one learner costs it (:mod:`.measure`)."""
