"""A small library for the tuning tests (tests/test_tune.py): a dozen
paragraphs on the state, property and mutual aid, written for the tests."""
from __future__ import annotations

from readingroom import Block, Document, ingest, open_library

PARAGRAPHS = {
    "state": [
        "The state, in the anarchist view, is an institution that claims a monopoly of legitimate violence over a "
        "territory. Its laws are enforced by police, courts and prisons, and its officials are not chosen by those "
        "who must obey them in any meaningful sense. Anarchists therefore see the state as a hierarchy that "
        "protects the privileges of a ruling minority.",
        "Bakunin argued that a workers' state would soon become a new ruling class. Former workers who become "
        "rulers, he wrote, stop being workers and begin to look down on the toiling masses from the heights of "
        "the state. They then represent not the people but themselves and their claims to govern the people.",
        "Kropotkin traced the modern state to the sixteenth century, when kings and lawyers destroyed the free "
        "cities and the village communes. The guilds lost their charters, the common lands were enclosed, and "
        "the functions of mutual support passed to a central power that served the landlords.",
        "The Paris Commune of 1871 replaced the standing army with the armed people and made every official "
        "elected and recallable at any time. Its members were paid workmen's wages. Marx called it the political "
        "form at last discovered under which to work out the economic emancipation of labour.",
    ],
    "property": [
        "Proudhon asked what property is and answered that property is theft. He did not mean the house a "
        "family lives in or the tools an artisan works with, but ownership that lets an owner collect rent, "
        "interest and profit from the labour of others without working himself.",
        "Under capitalism the workers own nothing but their ability to work, which they must sell to the owners "
        "of the means of production for a wage. The value they produce above that wage is kept by the employer "
        "as profit, and this surplus is the source of the employer's wealth and power.",
        "Anarchists distinguish possession from property. Possession is the use of a thing by the person who "
        "occupies it, such as a farmer tilling a field or a worker using a machine. Property is a title that "
        "lets someone who does not use a thing exclude those who do.",
        "Cooperatives owned and run by their workers show that production needs no bosses. In the Spanish "
        "revolution of 1936 many factories and farms in Catalonia and Aragon were collectivised and managed by "
        "assemblies of the workers themselves, with elected and recallable delegates.",
    ],
    "mutual-aid": [
        "Kropotkin's Mutual Aid argued against the social Darwinists that cooperation, not competition, is the "
        "chief factor of evolution. He observed animals in Siberia and found that the species which practised "
        "mutual support were the most numerous and the most likely to survive.",
        "Among people, mutual aid shows itself in the village commune, the medieval guild and the trade union. "
        "Kropotkin held that each age created new institutions of solidarity even when the state tried to "
        "absorb or destroy the older ones.",
        "Free association means that people join together for a common purpose by agreement and may leave when "
        "they wish. Anarchists propose federations of such associations, from the workplace and the commune up "
        "to the region, instead of a central government that commands from above.",
        "Direct action is acting for yourselves instead of asking representatives to act for you. Strikes, "
        "occupations, boycotts and the building of alternative institutions are its forms, and anarchists value "
        "them because they teach people to manage their own affairs.",
    ],
}


def build(path) -> str:
    """The library at `path` with MiniLM vectors; its path."""
    documents = [Document("test", key, key.replace("-", " ").title(),
                          [Block(text, section=(f"Part {i + 1}",)) for i, text in enumerate(texts)],
                          authors=["Test Collective"], year=2000, language="en")
                 for key, texts in PARAGRAPHS.items()]
    with open_library(path) as lib:
        ingest(lib, documents, progress=False)
        from readingroom.models.embed import embed_library

        embed_library(lib, progress=False)
    return str(path)
