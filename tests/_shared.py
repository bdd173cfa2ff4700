"""Constants shared by several test modules (imported as ``from _shared import ...``)."""

ULX = "xmm_epic_pn/ngc7793_ulx4/PN_spectrum_grp20.fits"

# One ULX-4 problem for test_display, test_magics and test_plots: compiled once a session.
MODEL = """tbabs*(powerlaw + bbodyrad)   # the quickstart model
tbabs.nH ~ Uniform(0, 1)
powerlaw.PhoIndex ~ Uniform(0, 4)
powerlaw.norm ~ LogUniform(1e-5, 1e-1)
bbodyrad.kT ~ Uniform(0.05, 3)
bbodyrad.norm ~ LogUniform(1e-3, 10)
"""
