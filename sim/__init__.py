# Under make, error lines name the knob the user typed, not the flag (sim.knobs).
from rtl.argparse_fix import install as _install_argparse_fix
from sim.knobs import install as _install_knobs

_install_knobs()
_install_argparse_fix()     # --option=-- is the value '--' (rtl.argparse_fix)
