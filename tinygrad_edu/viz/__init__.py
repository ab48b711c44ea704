"""See inside: the graph under a tensor (DOT, picture, text tree), a backward trace, and plots of learning.

Everything here sits above the core and only reads it. Graphviz and matplotlib are optional: `render` needs
Graphviz's `dot`, the plot functions need matplotlib (`pip install "tinygrad_edu[plot]"`), each imported only
when used. In Jupyter, `graph(loss)` shows the graph inline (as text without Graphviz), a trace shows its
lines as a table, and each plot function given no path returns its matplotlib Figure, shown inline.

    from tinygrad_edu import viz
    viz.print_graph(loss); viz.to_dot(loss); viz.render(loss, "graph.svg"); viz.graph(loss)
    with viz.trace():
        loss.backward()
    viz.plot_run("runs/metrics.json", out_dir="runs/plots")
    viz.plot_attention(viz.attention_weights(gpt, ids, layer=0)[0], text, "head.png")   # one head of a GPT
"""
from tinygrad_edu.viz.attention import attention_weights, mean_distance, plot_attention
from tinygrad_edu.viz.display import Graph, Report, Table, graph
from tinygrad_edu.viz.graph import (
    format_graph,
    graph_nodes,
    network_dot,
    network_shapes,
    node_labels,
    print_graph,
    render,
    to_dot,
)
from tinygrad_edu.viz.plots import (
    confusion_matrix,
    load_metrics,
    plot_confusion,
    plot_curves,
    plot_misclassified,
    plot_run,
    plot_weights,
    predict,
)
from tinygrad_edu.viz.trace import Gradient, trace

__all__ = ["Gradient", "Graph", "Report", "Table", "attention_weights", "confusion_matrix", "format_graph", "graph",
           "graph_nodes", "load_metrics", "mean_distance", "network_dot", "network_shapes", "node_labels",
           "plot_attention", "plot_confusion", "plot_curves", "plot_misclassified", "plot_run", "plot_weights",
           "predict", "print_graph", "render", "to_dot", "trace"]
