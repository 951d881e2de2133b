# Under make, error lines name the knob the user typed, not the flag (sim.knobs).
from sim.knobs import install as _install_knobs

_install_knobs()
