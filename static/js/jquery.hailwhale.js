/*! jquery.hailwhale.js: the plugin glue: $(el).hailwhale(...) makes and drives hailwhale.widget.js graphs. */
/*
 *   $('#graph').hailwhale({url: 'http://localhost:8085', dimension: 'sales',
 *                          metric: 'dollars', depth: 1, autoupdate: true});
 *   $('#graph').hailwhale('destroy');
 *   $.hailwhale('http://localhost:8085').count({dimensions: {sales: 'p42'},
 *                                               metrics: {dollars: 500}});
 *
 * Load after jQuery, flot (with vendor/flot/jquery.event.drag.js, for zooming)
 * and the widget's pieces (hailwhale.client.js, hailwhale.format.js,
 * hailwhale.meta.js, hailwhale.range.js, hailwhale.legend.js, hailwhale.panels.js,
 * hailwhale.series.js, hailwhale.requests.js, hailwhale.widget.js, in that order), with css/hailwhale.css linked. A page that
 * loads this file alone gets what it lacks from this file's folder, once;
 * $(el).hailwhale() calls made meanwhile run, in order, when it is in.
 */
(function ($) {
    'use strict';

    if (!$) {
        throw new Error('jquery.hailwhale.js needs jQuery on the page first');
    }

    var DATA_KEY = 'hailwhale';
    var METHODS = {destroy: 1, refresh: 1, update: 1, resize: 1};
    // What each file adds (to $.hailwhale, or jQuery's drag events, which flot's selection
    // plugin needs for drag-to-zoom), in the order they need each other; paths from here.
    var PIECES = [['drag', '../vendor/flot/jquery.event.drag.js'],
                  ['Client', 'hailwhale.client.js'], ['text', 'hailwhale.format.js'],
                  ['meta', 'hailwhale.meta.js'], ['Range', 'hailwhale.range.js'],
                  ['Legend', 'hailwhale.legend.js'], ['Panels', 'hailwhale.panels.js'],
                  ['series', 'hailwhale.series.js'], ['Requests', 'hailwhale.requests.js'],
                  ['Widget', 'hailwhale.widget.js']];

    function present(name) {
        return name === 'drag' ? !!$.event.special.drag : !!($.hailwhale && $.hailwhale[name]);
    }
    var script = document.currentScript || $('script[src*="jquery.hailwhale.js"]').last()[0];
    var folder = script ? script.src.replace(/[?#].*$/, '').replace(/[^\/]*$/, '') : '';
    var waiting = [];  // calls made before the pieces are in; null once they are
    var failed = null;

    /** Link the stylesheet and load the scripts the page lacks; then run the waiting calls. */
    function loadPieces() {
        var head = document.head || document.documentElement;
        var missing = 1;
        function arrived() {
            if (--missing === 0 && !failed) {
                ready();
            }
        }
        function lost(src) {
            failed = 'HailWhale graph: could not load ' + src;
            $.each(waiting, function (i, call) {
                plugin.apply(call[0], call[1]);  // says so in the element
            });
        }
        if (!$('link[rel~="stylesheet"][href*="hailwhale.css"]').length) {
            // First in <head>, so the page's own rules win; without it the graph still draws.
            var link = $('<link rel="stylesheet">').attr('href', folder + '../css/hailwhale.css')
                .on('load error', arrived)[0];
            missing++;
            head.insertBefore(link, head.firstChild);
        }
        $.each(PIECES,
            function (i, piece) {
                if (!present(piece[0])) {
                    var tag = document.createElement('script');
                    tag.async = false;  // run in the order added: each needs those before it
                    tag.src = folder + piece[1];
                    tag.onload = arrived;
                    tag.onerror = function () { lost(tag.src); };
                    missing++;
                    head.appendChild(tag);
                }
            });
        arrived();
    }

    function ready() {
        var calls = waiting;
        waiting = null;
        $.fn.hailwhale.defaults = $.hailwhale.Widget.defaults;
        $.each(calls, function (i, call) {
            plugin.apply(call[0], call[1]);
        });
    }

    var GETTERS = {
        plot: function (widget) { return widget.plot; },
        plots: function (widget) { return widget.panels.plots(); },
        options: function (widget) { return $.extend({}, widget.options); }
    };

    /**
     * $(el).hailwhale(options) draws; $(el).hailwhale('destroy' | 'refresh' | 'resize');
     * $(el).hailwhale('update', options); $(el).hailwhale('plot') returns the (first) flot
     * plot, 'plots' one per metric, 'options' the options in force.
     */
    function plugin(options) {
        var getter = GETTERS.hasOwnProperty(options);
        if (failed) {
            if (typeof options !== 'string') {
                this.text(failed).attr('data-hailwhale-state', 'error');
            }
            return getter ? undefined : this;
        }
        if (waiting) {
            waiting.push([this, arguments]);
            return getter ? undefined : this;
        }
        if (typeof options === 'string') {
            var args = Array.prototype.slice.call(arguments, 1);
            if (getter) {
                var widget = this.first().data(DATA_KEY);
                return widget ? GETTERS[options](widget) : undefined;
            }
            if (!METHODS[options]) {
                throw new Error('hailwhale: no method ' + options);
            }
            return this.each(function () {
                var widget = $(this).data(DATA_KEY);
                if (widget) {
                    widget[options].apply(widget, args);
                }
            });
        }
        return this.each(function () {
            var old = $(this).data(DATA_KEY);
            if (old) {
                old.destroy();
            }
            $(this).data(DATA_KEY, new $.hailwhale.Widget(this, options));
        });
    }

    $.fn.hailwhale = plugin;
    loadPieces();
}(window.jQuery));
