"""mkdocs hook: render the Sphinx markup left in docstrings (not a page of the site).

The package's docstrings use a few reStructuredText constructs that Markdown
does not know: roles such as :class:`CSR` and a paragraph ending in ``::``
before a literal block. mkdocstrings renders the role's target as inline code
and leaves the role name in front of it (":class:CSR"), and keeps the "::".
This hook, run on the HTML of each page, drops the role name (linking the name
when the page documents ``brainevent.<name>``) and turns the "::" into ":".
"""

import re

ROLE = re.compile(r':(?:class|meth|func|mod|attr|data|obj|exc):<code>([\w.]+)</code>')
LITERAL_INTRO = re.compile(r'::(\s*)</p>')


def on_page_content(html, page, config, files):
    ids = set(re.findall(r'id="([\w.]+)"', html))

    def link(match):
        name = match.group(1)
        for target in (name, f'brainevent.{name.lstrip(".")}'):
            if target in ids:
                return f'<a href="#{target}"><code>{name}</code></a>'
        return f'<code>{name}</code>'

    html = ROLE.sub(link, html)
    return LITERAL_INTRO.sub(r':\1</p>', html)
