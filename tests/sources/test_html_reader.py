"""The HTML reader on small pages in the style of the generators people save
documentation from (DocBook, Sphinx, MkDocs, Javadoc), a blog and a wiki:
page chrome out, one line per paragraph, headings with their spaces,
admonitions as labelled boxes inside their section (issue 29)."""

from __future__ import annotations

from dsqa.build.chunking import split_sections
from dsqa.sources import formats
from dsqa.sources.sentences import sentence_spans

# DocBook's XSL output (as in a database manual): navigation tables above and
# below, a chapter table of contents, no-break spaces after section numbers,
# source lines wrapped inside paragraphs, a Note box with an <h3> title.
DOCBOOK = """<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<title>5.4.&nbsp;Constraints</title><link rel="prev" href="ddl-generated-columns.html" title="5.3.&nbsp;Generated Columns"></head>
<body id="docContent" class="container-fluid col-10"><div class="navheader"><table width="100%" summary="Navigation header">
<tr><th colspan="3" align="center">5.4.&nbsp;Constraints</th></tr>
<tr><td width="10%" align="left"><a accesskey="p" href="ddl-generated-columns.html" title="5.3.&nbsp;Generated Columns">Prev</a>&nbsp;</td>
<td width="10%" align="left"><a accesskey="u" href="ddl.html" title="Chapter&nbsp;5.&nbsp;Data Definition">Up</a></td>
<th width="60%" align="center">Chapter&nbsp;5.&nbsp;Data Definition</th>
<td width="20%" align="right">&nbsp;<a accesskey="n" href="ddl-system-columns.html" title="5.5.&nbsp;System Columns">Next</a></td></tr>
</table><hr></div>
<div class="sect1" id="DDL-CONSTRAINTS"><div class="titlepage"><div><div><h2 class="title" style="clear: both">5.4.&nbsp;Constraints</h2></div></div></div>
<div class="toc"><dl class="toc">
<dt><span class="sect2"><a href="ddl-constraints.html#DDL-CONSTRAINTS-CHECK-CONSTRAINTS">5.4.1. Check Constraints</a></span></dt>
<dt><span class="sect2"><a href="ddl-constraints.html#id-1.5.4.6.6">5.4.2. Not-Null Constraints</a></span></dt>
<dt><span class="sect2"><a href="ddl-constraints.html#DDL-CONSTRAINTS-UNIQUE-CONSTRAINTS">5.4.3. Unique Constraints</a></span></dt>
</dl></div>
<p>
    Data types are a way to limit the kind of data that can be stored in a
    table.  For many applications, however, the constraint they provide is
    too coarse.  For example, a column containing a product price should
    probably only accept positive values.
   </p>
<div class="note"><h3 class="title">Note</h3><p>
    A check constraint can also refer to several columns, but it is evaluated
    only when a row is inserted or updated.
   </p></div>
<p>
    Constraints give you as much control over the data in your tables as you
    wish.
   </p>
<div class="sect2" id="DDL-CONSTRAINTS-UNIQUE-CONSTRAINTS"><div class="titlepage"><div><div>
<h3 class="title">5.4.3.&nbsp;Unique Constraints</h3></div></div></div>
<p>
    Unique constraints ensure that the data contained in a column, or a
    group of columns, is unique among all the rows in the table.
   </p></div></div>
<div class="navfooter"><hr><table width="100%" summary="Navigation footer">
<tr><td width="40%" align="left"><a accesskey="p" href="ddl-generated-columns.html">Prev</a>&nbsp;</td>
<td width="20%" align="center"><a accesskey="u" href="ddl.html">Up</a></td>
<td width="40%" align="right">&nbsp;<a accesskey="n" href="ddl-system-columns.html">Next</a></td></tr>
<tr><td width="40%" align="left" valign="top">5.3.&nbsp;Generated Columns&nbsp;</td>
<td width="20%" align="center"><a accesskey="h" href="index.html">Home</a></td>
<td width="40%" align="right" valign="top">&nbsp;5.5.&nbsp;System Columns</td></tr>
</table></div></body></html>
"""

DOCBOOK_APPENDIX = """<html><body><div class="navheader"><table width="100%" summary="Navigation header">
<tr><th colspan="3" align="center">Appendix&nbsp;L.&nbsp;Acronyms</th></tr>
<tr><td width="10%" align="left"><a accesskey="p" href="a.html">Prev</a>&nbsp;</td><th width="60%" align="center">Part&nbsp;VIII.&nbsp;Appendixes</th>
<td width="20%" align="right">&nbsp;<a accesskey="n" href="b.html">Next</a></td></tr></table><hr></div>
<div class="appendix" id="ACRONYMS"><div class="titlepage"><div><div><h2 class="title">Appendix&nbsp;L.&nbsp;Acronyms</h2></div></div></div>
<p>This is a list of acronyms commonly used in the documentation and in
discussions about the system.</p>
<div class="variablelist"><dl class="variablelist"><dt><span class="term">ANSI</span></dt><dd><p>
American National Standards Institute</p></dd></dl></div></div></body></html>
"""

# Sphinx's classic theme (as the Python documentation): a "related" bar above
# and below, the sidebar with its local table of contents, previous and next
# topics and a search box, permalinks after headings, a Note admonition.
SPHINX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" /><title>4. More Control Flow Tools &#8212; Python 3.11 documentation</title>
<script src="../_static/doctools.js"></script></head><body>
<div class="related" role="navigation" aria-label="related navigation"><h3>Navigation</h3><ul>
<li class="right"><a href="../genindex.html" title="General Index" accesskey="I">index</a></li>
<li class="right"><a href="datastructures.html" title="5. Data Structures" accesskey="N">next</a> |</li>
<li class="right"><a href="introduction.html" title="3. An Informal Introduction" accesskey="P">previous</a> |</li>
<li><a href="https://www.python.org/">Python</a> &#187;</li>
<li class="nav-item"><a href="../index.html">3.11.2 Documentation</a> &#187;</li>
<li class="nav-item nav-item-1"><a href="index.html" accesskey="U">The Python Tutorial</a> &#187;</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
<section id="more-control-flow-tools"><span id="tut-morecontrol"></span>
<h1><span class="section-number">4. </span>More Control Flow Tools<a class="headerlink" href="#more-control-flow-tools" title="Permalink to this headline">¶</a></h1>
<p>Besides the <a class="reference internal" href="#"><code class="xref std std-keyword docutils literal notranslate"><span class="pre">while</span></code></a> statement just introduced, Python uses the usual
flow control statements known from other languages, with some twists.</p>
<section id="if-statements"><span id="tut-if"></span>
<h2><span class="section-number">4.1. </span><code class="xref std std-keyword docutils literal notranslate"><span class="pre">if</span></code> Statements<a class="headerlink" href="#if-statements" title="Permalink to this headline">¶</a></h2>
<p>Perhaps the most well-known statement type is the <code class="docutils literal notranslate"><span class="pre">if</span></code> statement.  For
example:</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span><span class="gp">&gt;&gt;&gt; </span><span class="n">x</span> <span class="o">=</span> <span class="nb">int</span><span class="p">(</span><span class="nb">input</span><span class="p">(</span><span class="s2">"Please enter an integer: "</span><span class="p">))</span>
</pre></div></div>
<div class="admonition note"><p class="admonition-title">Note</p>
<p>An <code class="docutils literal notranslate"><span class="pre">if</span></code> &#8230; <code class="docutils literal notranslate"><span class="pre">elif</span></code> sequence is a
substitute for the <code class="docutils literal notranslate"><span class="pre">switch</span></code> statements found in other languages.</p></div>
<p>There can be zero or more <code class="docutils literal notranslate"><span class="pre">elif</span></code> parts, and the <code class="docutils literal notranslate"><span class="pre">else</span></code> part is
optional.</p>
</section></section>
<div class="clearer"></div></div></div></div>
<div class="sphinxsidebar" role="navigation" aria-label="main navigation"><div class="sphinxsidebarwrapper">
<h3><a href="../contents.html">Table of Contents</a></h3><ul>
<li><a class="reference internal" href="#">4. More Control Flow Tools</a><ul>
<li><a class="reference internal" href="#if-statements">4.1. <code class="docutils literal notranslate"><span class="pre">if</span></code> Statements</a></li></ul></li></ul>
<h4>Previous topic</h4><p class="topless"><a href="introduction.html" title="previous chapter"><span class="section-number">3. </span>An Informal Introduction to Python</a></p>
<h4>Next topic</h4><p class="topless"><a href="datastructures.html" title="next chapter"><span class="section-number">5. </span>Data Structures</a></p>
<div class="this-page"><h3>This Page</h3><ul class="this-page-menu"><li><a href="../bugs.html">Report a Bug</a></li>
<li><a href="../_sources/tutorial/controlflow.rst.txt" rel="nofollow">Show Source</a></li></ul></div>
<div id="searchbox" style="display: none" role="search"><h3 id="searchlabel">Quick search</h3><div class="searchformwrapper">
<form class="search" action="../search.html" method="get"><input type="text" name="q" aria-labelledby="searchlabel" />
<input type="submit" value="Go" /></form></div></div></div></div><div class="clearer"></div></div>
<div class="footer">&copy; <a href="../copyright.html">Copyright</a> 2001-2023, Python Software Foundation.
<br />This page is licensed under the Python Software Foundation License Version 2.</div>
</body></html>
"""

# Sphinx's Read the Docs theme (as the Linux kernel's documentation): side
# navigation, breadcrumbs, Previous / Next buttons in the footer.
SPHINX_RTD = """<!DOCTYPE html>
<html class="writer-html5" lang="en"><head><meta charset="utf-8" /><title>Tmpfs &mdash; The Linux Kernel documentation</title></head>
<body class="wy-body-for-nav"><div class="wy-grid-for-nav">
<nav data-toggle="wy-nav-shift" class="wy-nav-side"><div class="wy-side-scroll"><div class="wy-side-nav-search">
<a href="../index.html" class="icon icon-home"> The Linux Kernel</a><div role="search"><form id="rtd-search-form" class="wy-form" action="../search.html" method="get">
<input type="text" name="q" placeholder="Search docs" /></form></div></div>
<div class="wy-menu wy-menu-vertical" role="navigation" aria-label="Navigation menu"><ul><li class="toctree-l1"><a href="../admin-guide/index.html">The Linux kernel user&#8217;s and administrator&#8217;s guide</a></li></ul></div></div></nav>
<section data-toggle="wy-nav-shift" class="wy-nav-content-wrap"><nav class="wy-nav-top" aria-label="Mobile navigation menu"><a href="../index.html">The Linux Kernel</a></nav>
<div class="wy-nav-content"><div class="rst-content"><div role="navigation" aria-label="Page navigation"><ul class="wy-breadcrumbs">
<li><a href="../index.html" class="icon icon-home"></a> &raquo;</li><li><a href="index.html">Filesystems in the kernel</a> &raquo;</li><li>Tmpfs</li>
<li class="wy-breadcrumbs-aside"><a href="../_sources/filesystems/tmpfs.rst.txt" rel="nofollow"> View page source</a></li></ul><hr/></div>
<div role="main" class="document" itemscope="itemscope" itemtype="http://schema.org/Article"><div itemprop="articleBody">
<section id="tmpfs"><h1>Tmpfs<a class="headerlink" href="#tmpfs" title="Permalink to this headline">&#61633;</a></h1>
<p>Tmpfs is a file system which keeps all of its files in virtual memory.</p>
<p>Everything in tmpfs is temporary in the sense that no files will be
created on your hard drive. If you unmount a tmpfs instance,
everything stored therein is lost.</p>
<div class="admonition warning"><p class="admonition-title">Warning</p><p>If you oversize your tmpfs instances the machine will deadlock
since the OOM handler will not be able to free that memory.</p></div>
<p>These parameters accept a suffix k, m or g for kilo, mega and giga and
can be changed on remount.</p></section></div></div>
<footer><div class="rst-footer-buttons" role="navigation" aria-label="Footer">
<a href="sysfs.html" class="btn btn-neutral float-left" title="sysfs" accesskey="p" rel="prev"><span class="fa fa-arrow-circle-left" aria-hidden="true"></span> Previous</a>
<a href="ubifs.html" class="btn btn-neutral float-right" title="UBI File System" accesskey="n" rel="next">Next <span class="fa fa-arrow-circle-right" aria-hidden="true"></span></a></div>
<hr/><div role="contentinfo"><p>&#169; Copyright The kernel development community.</p></div>
Built with <a href="https://www.sphinx-doc.org/">Sphinx</a> using a <a href="https://github.com/readthedocs/sphinx_rtd_theme">theme</a>
provided by <a href="https://readthedocs.org">Read the Docs</a>.</footer></div></div></section></div></body></html>
"""

# MkDocs Material: header with search, sidebar navigation and table of
# contents, the article, Previous / Next in the footer.
MKDOCS = """<!doctype html><html lang="en"><head><title>Configuration - Tool docs</title></head><body dir="ltr">
<a href="#configuration" class="md-skip">Skip to content</a>
<header class="md-header" data-md-component="header"><nav class="md-header__inner md-grid" aria-label="Header">
<div class="md-header__title">Tool docs</div><div class="md-search" data-md-component="search" role="dialog">
<form class="md-search__form" name="search"><input type="text" class="md-search__input" name="query" placeholder="Search"></form></div></nav></header>
<div class="md-container"><main class="md-main"><div class="md-main__inner md-grid">
<div class="md-sidebar md-sidebar--primary" data-md-component="sidebar"><nav class="md-nav md-nav--primary" aria-label="Navigation">
<ul class="md-nav__list"><li class="md-nav__item"><a href="../" class="md-nav__link">Home</a></li>
<li class="md-nav__item"><a href="../install/" class="md-nav__link">Installation</a></li>
<li class="md-nav__item md-nav__item--active"><a href="./" class="md-nav__link">Configuration</a></li></ul></nav></div>
<div class="md-sidebar md-sidebar--secondary"><nav class="md-nav md-nav--secondary" aria-label="Table of contents">
<label class="md-nav__title" for="__toc">Table of contents</label><ul class="md-nav__list"><li class="md-nav__item">
<a href="#cache-directory" class="md-nav__link">Cache directory</a></li></ul></nav></div>
<div class="md-content" data-md-component="content"><article class="md-content__inner md-typeset">
<h1 id="configuration">Configuration<a class="headerlink" href="#configuration" title="Permanent link">#</a></h1>
<p>The tool reads its settings from <code>tool.toml</code> in the project folder,
then from the environment.</p>
<h2 id="cache-directory">Cache directory<a class="headerlink" href="#cache-directory" title="Permanent link">#</a></h2>
<p>Downloaded archives are kept in the cache directory, which defaults to
<code>~/.cache/tool</code> and can be moved with <code>TOOL_CACHE</code>.</p>
<div class="admonition tip"><p class="admonition-title">Tip</p><p>Put the cache on a fast local disk, never on a network share.</p></div>
<p>The cache is safe to delete at any time.</p>
</article></div></div></main>
<footer class="md-footer"><nav class="md-footer__inner md-grid" aria-label="Footer">
<a href="../install/" class="md-footer__link md-footer__link--prev" rel="prev"><div class="md-footer__title"><span class="md-footer__direction">Previous</span>
<div class="md-ellipsis">Installation</div></div></a>
<a href="../usage/" class="md-footer__link md-footer__link--next" rel="next"><div class="md-footer__title"><span class="md-footer__direction">Next</span>
<div class="md-ellipsis">Usage</div></div></a></nav>
<div class="md-footer-meta md-typeset"><div class="md-copyright">Made with Material for MkDocs</div></div></footer></div></body></html>
"""

# Javadoc (the frames era): the frameset page, the all-classes frame, and a
# class page between its top and bottom navigation bars.
JAVADOC_FRAMESET = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Frameset//EN"><html><head><title>Overview</title></head>
<frameset cols="20%,80%" title="Documentation frame"><frame src="allclasses-frame.html" name="packageFrame">
<frame src="overview-summary.html" name="classFrame"><noframes><noscript><div>JavaScript is disabled on your browser.</div></noscript>
<h2>Frame Alert</h2><p>This document is designed to be viewed using the frames feature. If you see this message,
you are using a non-frame-enabled web client. Link to <a href="overview-summary.html">Non-frame version</a>.</p></noframes></frameset></html>
"""
JAVADOC_ALLCLASSES = """<html><head><title>All Classes</title></head><body><h1 class="bar">All&nbsp;Classes</h1>
<div class="indexContainer"><ul><li><a href="org/x/Cache.html" target="classFrame">Cache</a></li>
<li><a href="org/x/CacheBuilder.html" target="classFrame">CacheBuilder</a></li>
<li><a href="org/x/Entry.html" target="classFrame">Entry</a></li><li><a href="org/x/Loader.html" target="classFrame">Loader</a></li></ul></div></body></html>
"""
JAVADOC_CLASS = """<html><head><title>Cache</title></head><body>
<div class="topNav"><a name="navbar.top"></a><ul class="navList" title="Navigation"><li><a href="../../overview-summary.html">Overview</a></li>
<li><a href="package-summary.html">Package</a></li><li class="navBarCell1Rev">Class</li><li><a href="package-tree.html">Tree</a></li>
<li><a href="../../deprecated-list.html">Deprecated</a></li><li><a href="../../index-all.html">Index</a></li><li><a href="../../help-doc.html">Help</a></li></ul></div>
<div class="subNav"><ul class="navList"><li><a href="../../org/x/CacheBuilder.html">Prev&nbsp;Class</a></li><li><a href="../../org/x/Entry.html">Next&nbsp;Class</a></li></ul>
<ul class="navList"><li><a href="../../index.html?org/x/Cache.html" target="_top">Frames</a></li><li><a href="Cache.html" target="_top">No&nbsp;Frames</a></li></ul></div>
<div class="header"><div class="subTitle">org.x</div><h2 title="Class Cache" class="title">Class Cache</h2></div>
<div class="contentContainer"><div class="description"><ul class="blockList"><li class="blockList">
<div class="block">A bounded cache that evicts the least recently used entry
when it is full.</div></li></ul></div></div>
<div class="bottomNav"><a name="navbar.bottom"></a><ul class="navList" title="Navigation"><li><a href="../../overview-summary.html">Overview</a></li>
<li><a href="package-summary.html">Package</a></li><li class="navBarCell1Rev">Class</li><li><a href="package-tree.html">Tree</a></li></ul></div>
<p class="legalCopy"><small>Copyright &#169; 2019. All rights reserved.</small></p></body></html>
"""

# A blog post: site header and menu, skip link, breadcrumbs, the post with
# its meta line, share buttons, tags, a pager, comments, a sidebar with a
# search box and recent posts, a footer; no <article> or <main>.
BLOG = """<!DOCTYPE html><html><head><title>Why our queue lost messages | Ops notes</title></head><body class="post-template">
<a class="skip-link screen-reader-text" href="#content">Skip to content</a>
<div id="masthead" class="site-header"><div class="site-branding"><p class="site-title"><a href="/">Ops notes</a></p></div>
<div id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu"><li><a href="/">Home</a></li><li><a href="/about/">About</a></li><li><a href="/archive/">Archive</a></li></ul></div></div>
<div id="content" class="site-content"><div id="primary" class="content-area">
<div class="breadcrumbs"><a href="/">Home</a> &raquo; <a href="/category/queues/">Queues</a> &raquo; Why our queue lost messages</div>
<div class="post-header"><h1 class="entry-title">Why our queue lost messages</h1><div class="entry-meta">Posted on March 3 by Dana</div></div>
<div class="entry-content">
<p>Last week a consumer acknowledged messages before it had written
them to the database, so a crash between the two steps lost them.</p>
<h2>The fix</h2>
<p>We moved the acknowledgement after the commit.
Redelivery can now repeat a message, so the consumer must be idempotent.</p>
<h4>Note</h4>
<p>Redelivered messages carry the same message id, which makes duplicates easy to drop.</p>
<p>We also added an alert on the queue's redelivery rate.</p>
</div>
<div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">Share this:</h3><ul><li><a href="https://twitter.com/share">Twitter</a></li><li><a href="https://facebook.com/share">Facebook</a></li><li><a href="mailto:?">Email</a></li></ul></div>
<div class="tags-links">Tags: <a href="/tag/queues/">queues</a>, <a href="/tag/postmortem/">postmortem</a>, <a href="/tag/idempotency/">idempotency</a></div>
<div class="post-navigation"><div class="nav-previous"><a href="/older/">&laquo; Older posts</a></div><div class="nav-next"><a href="/newer/">Newer posts &raquo;</a></div></div>
<div id="comments" class="comments-area"><h2 class="comments-title">2 thoughts on this post</h2><ol class="comment-list"><li>Great write-up, thanks!</li></ol>
<div id="respond"><h3>Leave a Reply</h3><form action="/wp-comments-post.php" method="post"><textarea name="comment"></textarea></form></div></div>
</div>
<div id="secondary" class="widget-area"><div class="widget widget_search"><form role="search" class="search-form" action="/"><label>Search for:<input type="search" name="s"></label></form></div>
<div class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2><ul><li><a href="/a/">Tuning consumer prefetch</a></li><li><a href="/b/">A week of on-call</a></li><li><a href="/c/">Backups we never tested</a></li></ul></div></div></div>
<div id="colophon" class="site-footer"><div class="site-info">Proudly powered by WordPress | Theme by Someone</div></div></body></html>
"""

# A MediaWiki page: jump links, the table of contents, [edit] links, a
# navigation box and the category bar.
WIKI = """<!DOCTYPE html><html><head><title>Consistent hashing - Team wiki</title></head><body class="mediawiki">
<div id="mw-page-base" class="noprint"></div><div id="content" class="mw-body" role="main">
<div id="siteNotice"><div id="localNotice"><p>The wiki is read-only on Saturday for the upgrade.</p></div></div>
<h1 id="firstHeading" class="firstHeading">Consistent hashing</h1><div id="bodyContent" class="vector-body">
<div id="siteSub" class="noprint">From Team wiki</div>
<a class="mw-jump-link" href="#mw-head">Jump to navigation</a> <a class="mw-jump-link" href="#searchInput">Jump to search</a>
<div id="mw-content-text" class="mw-body-content"><div class="mw-parser-output">
<p><b>Consistent hashing</b> maps keys and servers onto the same ring, so that adding a server
moves only the keys between it and its predecessor.</p>
<div id="toc" class="toc" role="navigation" aria-labelledby="mw-toc-heading"><div class="toctitle"><h2 id="mw-toc-heading">Contents</h2></div>
<ul><li class="toclevel-1"><a href="#Virtual_nodes"><span class="tocnumber">1</span> <span class="toctext">Virtual nodes</span></a></li>
<li class="toclevel-1"><a href="#See_also"><span class="tocnumber">2</span> <span class="toctext">See also</span></a></li></ul></div>
<h2><span class="mw-headline" id="Virtual_nodes">Virtual nodes</span><span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="/index.php?title=Consistent_hashing&amp;action=edit&amp;section=1" title="Edit section: Virtual nodes">edit</a><span class="mw-editsection-bracket">]</span></span></h2>
<p>Each server is placed on the ring many times, as virtual nodes, which evens out the share
of keys each server holds.</p>
<table class="navbox"><tr><th>Distributed systems</th></tr><tr><td><a href="/wiki/Raft">Raft</a> · <a href="/wiki/Paxos">Paxos</a> · <a href="/wiki/Gossip">Gossip</a> · <a href="/wiki/Vector_clocks">Vector clocks</a></td></tr></table>
</div></div>
<div class="printfooter">Retrieved from "https://wiki.example/index.php?title=Consistent_hashing"</div>
<div id="catlinks" class="catlinks"><div id="mw-normal-catlinks" class="mw-normal-catlinks"><a href="/wiki/Special:Categories">Categories</a>: <ul><li><a href="/wiki/Category:Storage">Storage</a></li><li><a href="/wiki/Category:Algorithms">Algorithms</a></li></ul></div></div>
</div></div><div id="mw-navigation"><h2>Navigation menu</h2><div id="p-search" role="search"><form action="/index.php"><input type="search" name="search" placeholder="Search Team wiki"></form></div></div>
<div id="footer" role="contentinfo"><ul id="footer-info"><li>This page was last edited on 3 March.</li></ul></div></body></html>
"""


def text_of(page: str, name: str = "page.html") -> str:
    return formats.read(name, page.encode()).text


def heading_of(text: str, phrase: str) -> str:
    """The heading path of the section holding ``phrase``, as the chunker
    finds it."""
    lines = text.split("\n")
    for first, end, heading in split_sections(text):
        if phrase in "\n".join(lines[first:end]):
            return heading
    raise AssertionError(f"{phrase!r} not in the text")


def assert_gone(text: str, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase not in text, phrase


def assert_one_line(text: str, sentence: str) -> None:
    """``sentence`` sits on one line, and is quoted whole."""
    assert any(sentence in line for line in text.split("\n")), sentence
    assert any(text[a:b] == sentence for a, b in sentence_spans(text)), sentence


# -- DocBook ----------------------------------------------------------------------
def test_docbook_navigation_tables_and_toc_are_not_content():
    text = text_of(DOCBOOK)
    assert_gone(text, "Prev", "Next", "Up |", "Home", "Chapter 5. Data Definition", "Generated Columns", "System Columns",
                "5.4.1. Check Constraints", "5.4.2. Not-Null")
    assert text.startswith("## 5.4. Constraints\n\nData types are a way")
    assert text.rstrip().endswith("is unique among all the rows in the table.")


def test_docbook_wrapped_paragraph_lines_become_one_line():
    text = text_of(DOCBOOK)
    assert_one_line(text, "Data types are a way to limit the kind of data that can be stored in a table.")
    assert_one_line(text, "For many applications, however, the constraint they provide is too coarse.")
    assert_one_line(text, "Constraints give you as much control over the data in your tables as you wish.")


def test_docbook_headings_keep_their_spaces():
    text = text_of(DOCBOOK)
    assert heading_of(text, "unique among all the rows") == "5.4. Constraints › 5.4.3. Unique Constraints"
    appendix = text_of(DOCBOOK_APPENDIX)
    assert appendix.startswith("## Appendix L. Acronyms\n")
    assert heading_of(appendix, "American National Standards Institute") == "Appendix L. Acronyms"
    assert "\u00a0" not in text + appendix


def test_docbook_note_stays_in_its_section_as_a_labelled_box():
    text = text_of(DOCBOOK)
    assert "> **Note:** A check constraint can also refer to several columns" in text
    assert "### Note" not in text
    assert heading_of(text, "A check constraint can also refer") == "5.4. Constraints"
    assert heading_of(text, "Constraints give you as much control") == "5.4. Constraints"


def test_docbook_admonition_drawn_as_a_table_with_an_icon():
    page = """<html><body><div class="sect1"><h2 class="title">2.1. Setup</h2><p>Install the server first.</p>
<div class="caution" style="margin-left: 0.5in; margin-right: 0.5in;"><table border="0" summary="Caution">
<tr><td rowspan="2" align="center" valign="top" width="25"><img alt="[Caution]" src="caution.png"></td><th align="left">Caution</th></tr>
<tr><td align="left" valign="top"><p>Never run the server as root.</p></td></tr></table></div>
<p>Then create a user.</p></div></body></html>"""
    text = text_of(page)
    assert "> **Caution:** Never run the server as root." in text
    assert heading_of(text, "Then create a user.") == "2.1. Setup"
    assert "|" not in text


# -- Sphinx ----------------------------------------------------------------------
def test_sphinx_relbar_sidebar_permalinks_and_footer_are_not_content():
    text = text_of(SPHINX)
    assert_gone(text, "¶", "Navigation", "previous", "3.11.2 Documentation", "Table of Contents", "Previous topic",
                "Next topic", "Data Structures", "This Page", "Report a Bug", "Show Source", "Quick search", "Copyright",
                "licensed")
    assert text.startswith("# 4. More Control Flow Tools\n\nBesides the")


def test_sphinx_paragraphs_headings_and_admonitions():
    text = text_of(SPHINX)
    assert_one_line(text, "Perhaps the most well-known statement type is the `if` statement.")
    assert_one_line(text, "There can be zero or more `elif` parts, and the `else` part is optional.")
    assert "## 4.1. `if` Statements\n" in text
    assert "> **Note:** An `if` … `elif` sequence is a substitute for the `switch` statements found in other languages." in text
    assert heading_of(text, "There can be zero or more") == "4. More Control Flow Tools › 4.1. `if` Statements"
    assert '>>> x = int(input("Please enter an integer: "))' in text


def test_sphinx_read_the_docs_theme():
    text = text_of(SPHINX_RTD)
    assert_gone(text, "Search docs", "The Linux Kernel", "administrator", "Filesystems in the kernel", "View page source",
                "Previous", "Next", "Copyright", "Built with", "\uf0c1")
    assert text.startswith("# Tmpfs\n\nTmpfs is a file system")
    assert_one_line(text, "If you unmount a tmpfs instance, everything stored therein is lost.")
    assert "> **Warning:** If you oversize your tmpfs instances the machine will deadlock since" in text
    assert heading_of(text, "These parameters accept a suffix") == "Tmpfs"


# -- MkDocs and Javadoc ---------------------------------------------------------------
def test_mkdocs_navigation_toc_search_and_pager_are_not_content():
    text = text_of(MKDOCS)
    assert_gone(text, "Skip to content", "Tool docs", "Search", "Installation", "Table of contents", "Previous", "Usage",
                "Made with", "#\n")
    assert text.startswith("# Configuration\n\nThe tool reads its settings from `tool.toml` in the project folder, then")
    assert "> **Tip:** Put the cache on a fast local disk" in text
    assert heading_of(text, "The cache is safe to delete") == "Configuration › Cache directory"


def test_javadoc_frames_and_navigation_bars():
    for page in (JAVADOC_FRAMESET, JAVADOC_ALLCLASSES):
        try:
            text = text_of(page)
        except ValueError as exc:
            assert "no text" in str(exc)
        else:
            raise AssertionError(f"a frame or a list of links was read as a note: {text!r}")
    text = text_of(JAVADOC_CLASS)
    assert_gone(text, "Overview", "Package", "Tree", "Deprecated", "Help", "Prev Class", "Next Class", "Frames")
    assert_one_line(text, "A bounded cache that evicts the least recently used entry when it is full.")
    assert "Class Cache" in text


# -- a blog and a wiki ------------------------------------------------------------------
def test_blog_page_chrome_is_not_content():
    text = text_of(BLOG)
    assert_gone(text, "Skip to content", "Ops notes", "About", "Archive", "Queues »", "Share this", "Twitter", "Tags:",
                "postmortem", "Older posts", "Newer posts", "thoughts on this post", "Great write-up", "Leave a Reply",
                "Search for", "Recent Posts", "Tuning consumer prefetch", "WordPress")
    assert text.startswith("# Why our queue lost messages\n")
    assert_one_line(text, "Last week a consumer acknowledged messages before it had written them to the database, so a crash between the two steps lost them.")
    assert "**Note:** Redelivered messages carry the same message id" in text
    assert heading_of(text, "alert on the queue's redelivery rate") == "Why our queue lost messages › The fix"


def test_wiki_page_toc_edit_links_navbox_and_categories_are_not_content():
    text = text_of(WIKI)
    assert_gone(text, "read-only", "From Team wiki", "Jump to", "Contents", "edit", "[", "Distributed systems", "Paxos",
                "Retrieved from", "Categories", "Algorithms", "Navigation menu", "last edited")
    assert text.startswith("# Consistent hashing\n")
    assert "## Virtual nodes\n" in text
    assert_one_line(text, "Each server is placed on the ring many times, as virtual nodes, which evens out the share of keys each server holds.")


# -- what the rules must keep ----------------------------------------------------------
def test_content_that_looks_like_chrome_is_kept():
    page = """<html><body><main><h1>Paths</h1>
<section id="module-search-path"><h2>The module search path</h2><p>Python looks for modules in the folders of <code>sys.path</code>.</p></section>
<section id="navigation"><h2>Navigation</h2><p>Choose <span class="menuselection">File ‣ Open</span> to open a project, then see
<a href="a.html">the loader</a>, <a href="b.html">the finder</a> and <a href="c.html">the importer</a> for how it is read.</p></section>
<div class="highlight"><pre><span class="hljs-comment"># the search path, in order</span>
print(sys.path)</pre></div>
<table><tr><td class="header">max_connections</td><td>the most clients served at once</td></tr></table>
<p>First line<br>second line</p>
<p>Read the <a href="next.html">next chapter</a> when you are done with this one and the exercises.</p>
<p>See <a href="s54.html">Section 5.4</a>, <a href="s55.html">Section 5.5</a> and <a href="c9.html">Chapter 9</a>.</p>
</main></body></html>"""
    text = text_of(page)
    for kept in ("## The module search path", "Python looks for modules", "## Navigation", "Choose File ‣ Open to open a project",
                 "the loader, the finder and the importer", "# the search path, in order", "Read the next chapter",
                 "See Section 5.4, Section 5.5 and Chapter 9.", "| max_connections | the most clients served at once |"):
        assert kept in text, kept
    assert "First line\nsecond line" in text


def test_a_page_without_a_declared_charset_is_read_as_utf8():
    page = "<html><body><h1>Café ‣ menus</h1><p>Crème brûlée — 5 €, naïve façade.</p></body></html>"
    assert text_of(page) == "# Café ‣ menus\n\nCrème brûlée — 5 €, naïve façade.\n"
    assert formats.read("bom.html", b"\xef\xbb\xbf" + page.encode()).text == text_of(page)


# Sphinx's command-line reference (Python's using/cmdline.html): options as a
# definition list whose terms are placeholders in angle brackets.
SPHINX_OPTIONS = """<!DOCTYPE html><html><body><div class="document"><div class="body" role="main">
<section id="command-line"><h2>1.1. Command line<a class="headerlink" href="#command-line">¶</a></h2>
<section id="interface-options"><h3>1.1.1. Interface options<a class="headerlink" href="#interface-options">¶</a></h3>
<dl class="std option">
<dt class="sig sig-object std" id="cmdoption-c"><span class="sig-name descname"><span class="pre">-c</span></span>
<span class="sig-prename descclassname"> <span class="pre">&lt;command&gt;</span></span></dt>
<dd><p>Execute the Python code in <em>command</em>.</p></dd></dl>
<dl class="std option">
<dt class="sig sig-object std" id="cmdoption-arg-script">
<span class="sig-name descname"><span class="pre">&lt;script&gt;</span></span></dt>
<dd><p>Execute the Python code contained in <em>script</em>, which must be a filesystem path.</p></dd></dl>
<dl class="std option">
<dt class="sig sig-object std" id="cmdoption-arg-module">
<span class="sig-name descname"><span class="pre">&lt;module&gt;</span></span></dt>
<dd><p>Run the named module as a script from the module search path.</p></dd></dl>
</section>
<section id="misc"><h3>1.1.3. Miscellaneous options</h3>
<p>The development mode enables additional runtime checks that are too expensive by default.</p>
</section></section>
<section id="envvars"><h2>1.2. Environment variables</h2>
<p>Extension modules cannot be imported from zipfiles on the module search path.</p>
</section></div></div></body></html>"""


def test_a_placeholder_in_angle_brackets_opening_a_line_is_text_not_html():
    """``<script>`` opening a line is, to CommonMark, an HTML block that runs
    to ``</script>``: it took the rest of Python's command-line page, every
    heading after it and every sentence in it. Placeholders stay text (as
    code), and the sections after them keep their headings."""
    text = text_of(SPHINX_OPTIONS)
    assert heading_of(text, "too expensive by default") == "1.1. Command line › 1.1.3. Miscellaneous options"
    assert heading_of(text, "cannot be imported from zipfiles") == "1.2. Environment variables"
    quotable = [text[a:b] for a, b in sentence_spans(text)]
    for said in ("Execute the Python code contained in *script*", "Run the named module as a script", "too expensive by default"):
        assert any(said in q for q in quotable), said
    assert "`<script>`" in text and "`<module>`" in text


def test_a_one_line_admonition_is_no_heading_of_what_follows():
    """A box holding one short line ("See also: Invoking the Interpreter")
    is a labelled quote, and the paragraph after it stays in its section."""
    page = """<html><body><div class="body" role="main"><section><h2>1.1. Command line</h2>
<p>If no interface option is given, the interactive mode is implied.</p>
<div class="admonition seealso"><p class="admonition-title">See also</p><p>Invoking the Interpreter</p></div>
<p>Changed in version 3.4: automatic enabling of tab-completion and history editing.</p>
</section></div></body></html>"""
    text = text_of(page)
    assert "> **See also:** Invoking the Interpreter" in text
    assert heading_of(text, "automatic enabling of tab-completion") == "1.1. Command line"


# Sphinx's option (and function, glossary) entries: a definition list whose
# definition holds paragraphs, a list, a version note and a code example.
SPHINX_DEFINITION = """<html><body><div class="body" role="main"><section id="misc"><h3>1.1.3. Miscellaneous options</h3>
<dl class="std option">
<dt class="sig sig-object std" id="cmdoption-X"><span class="sig-name descname"><span class="pre">-X</span></span><span class="sig-prename descclassname"></span></dt>
<dd><p>Reserved for various implementation-specific options. CPython currently defines the following possible values:</p>
<ul class="simple">
<li><p><code class="docutils literal notranslate"><span class="pre">-X</span> <span class="pre">faulthandler</span></code> to enable the fault handler;</p></li>
<li><p><code class="docutils literal notranslate"><span class="pre">-X</span> <span class="pre">dev</span></code>: enable Python Development Mode, introducing additional runtime checks.</p></li>
</ul>
<p>It also allows passing arbitrary values. They are retrieved through the options dictionary.</p>
<div class="versionchanged"><p><span class="versionmodified changed">Changed in version 3.2: </span>The option was added.</p></div>
<div class="highlight-sh notranslate"><div class="highlight"><pre><span></span>python -X dev script.py
</pre></div></div>
</dd></dl>
<ol class="arabic simple"><li><dl class="simple"><dt>Stop the server and its daemon</dt><dd><p># sudo ksmbd.control -s</p>
</dd></dl></li></ol>
<p># mount /dev/sd1 /tmp/b</p>
<p>Options that follow the definition list are read as before.</p>
</section></div></body></html>"""


def test_a_definition_s_paragraphs_lists_and_code_are_not_one_indented_code_block():
    """markdownify indents a definition's blocks under a ``:`` marker, which
    CommonMark reads, after the first paragraph, as one indented code block:
    every paragraph of Sphinx's option and function entries was then a
    "line of code", quoted whole, never cut into its sentences, and its code
    example lost its fence. A definition's blocks read as the blocks they
    are."""
    from dsqa.sources import markup

    text = text_of(SPHINX_DEFINITION)
    quotable = [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]
    assert "It also allows passing arbitrary values." in quotable
    assert "They are retrieved through the options dictionary." in quotable
    assert any(q.startswith("-X : Reserved for various implementation-specific options.") for q in quotable)
    assert any(q.endswith("enable Python Development Mode, introducing additional runtime checks.") for q in quotable)
    lines = text.split("\n")
    code = [lines[b.first : b.end] for b in markup.parse(text).blocks if b.kind == markup.CODE]
    assert code == [["```", "python -X dev script.py", "```"]]
    assert heading_of(text, "Options that follow") == "1.1.3. Miscellaneous options"
    # a definition or a paragraph that is a shell prompt or comment line stays text, never a heading
    assert [b.content for b in markup.parse(text).blocks if b.kind == markup.HEADING] == ["1.1.3. Miscellaneous options"]


# The kernel's pages (Sphinx, Read the Docs theme): an indented reST table
# becomes a table inside a <blockquote>, and so do indented code examples.
KERNEL_QUOTED_TABLE = """<html><body><div role="main" class="document"><div class="section" id="options">
<h2>Mount options</h2><blockquote><div><table class="docutils align-default">
<tbody><tr class="row-odd"><td><p>trans=name</p></td><td><p>select an alternative transport</p></td></tr>
<tr class="row-even"><td><p>cache=mode</p></td><td><p>specifies a caching policy for the mount</p></td></tr></tbody></table>
<div class="highlight-default notranslate"><div class="highlight"><pre>&gt;&gt;&gt; mount -t 9p -o trans=virtio tag /mnt
</pre></div></div></div></blockquote></div></div></body></html>"""


def test_a_table_row_or_code_line_in_a_quoted_box_is_quoted_without_its_markers():
    """A row of a table, or a line of code, inside a block quote was a
    quotable span that began with the quote's ``>`` marker ("> | trans=name
    | ..."): 700 of the kernel filesystems pages' spans. The marker is the
    box's, not the row's; a ``>`` of the code itself stays."""
    text = text_of(KERNEL_QUOTED_TABLE)
    assert "> |" in text  # the box is kept as a quote
    quotable = [text[a:b] for a, b in sentence_spans(text)]
    assert any(q.startswith("| cache=mode |") for q in quotable), quotable
    assert ">>> mount -t 9p -o trans=virtio tag /mnt" in quotable
    assert not any(q.startswith("> ") for q in quotable)
