"""``dynamic``: neural 3D mapping of scenes that move (issue 30): ego-stabilised background subtraction,
parameter-free 3D flow (:mod:`unrender.nn.flow`) and render-and-compare tracking. Not registered as a
method yet: its data and training are still to be built."""
