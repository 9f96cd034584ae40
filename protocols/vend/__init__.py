"""The vend cycle as a pure, replayable state machine: credit, selection, dispense, settle.

Inputs (:mod:`protocols.vend.inputs`) are facts the controller observed or decisions
a person made; outputs (:mod:`protocols.vend.outputs`) are what the controller must
do next. The controller journals every input before applying it, so replaying the
journal through :class:`protocols.vend.session.VendSession` rebuilds the exact state,
including a vend or payout that was in flight when the power failed.
"""
